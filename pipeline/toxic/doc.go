// Package toxic breaks the network on purpose: toxiproxy's toxics (latency,
// bandwidth, slow_close, timeout, reset_peer, slicer, limit_data) as
// pipeline stages, so that they compose with everything else bev has
// (sockets, pairs, filters, TLS, rate limits) and run inside a Go test
// with no proxy process.
//
// A [Set] is a named, ordered list of [Toxic] values, each with toxiproxy's
// type, attributes, stream (direction) and toxicity. Toxics may be added,
// updated and removed at any time: every [Stage] made from the set picks
// the change up on its next call (the set wakes it), and a removed toxic
// hands what it held to the next, in order, with nothing lost.
//
// [NewFilter] puts a set in front of a bufferevent: the Downstream toxics
// on what it reads, the Upstream toxics on what it writes. [WrapConn] does
// the same for a net.Conn a test already has (a dialer for http.Transport
// or a database driver), returning a net.Conn.
//
// # Transparent toxics
//
// A toxic is transparent while its attributes make it forward every byte
// at once and unchanged: a latency of 0 with no jitter, a bandwidth of 0,
// and any toxic whose toxicity roll left it out of the connection. A stage
// whose toxics are all transparent and which holds nothing costs what one
// with no toxic costs: it moves each chunk on whole, arms no timer, and
// reports that it passes ([Stage.Passes]), so that a socket's actor lets
// writers skip it. A change to the set (a toxic added, or updated to a
// latency of 50 ms) applies from the next chunk either way.
//
// # Time
//
// A toxic that waits (latency, bandwidth, slicer, slow_close, timeout,
// reset_peer) arms one timer per stage on the Base's clock; when it fires
// it wakes the bufferevent, whose actor calls the stage again. Nothing
// sleeps and no goroutine is kept, so tests run under testing/synctest.
// The bandwidth toxic's token bucket ([limiter.Bucket]) runs on the same
// clock, so an injected clock drives it too.
//
// Attributes are int64 milliseconds (microseconds for the slicer's delay)
// and KB/s, as toxiproxy's, and may be as large as Validate lets them: a
// wait too long for a time.Duration is held at the longest one (about 292
// years), a rate whose bytes per tick overflow at the largest int64, so
// that a huge attribute never wraps to a short wait or a trickle.
//
// # Memory
//
// A stage never holds more than its limit allows (the room left under the
// watermark of what it feeds, or [DefaultHold] when there is none): what
// it cannot take waits upstream, and reading stops, so a latency toxic
// over a fast stream pushes back instead of buffering without bound.
package toxic
