// Package pipeline stacks transformations on bufferevents: a filter is a
// bufferevent whose transport is another bufferevent, with an input stage
// between what the underlying reads and the filter's input and an output
// stage between the filter's output and what the underlying writes. Bytes
// flow down a stack of filters (gzip over TLS over a socket, say) with
// the same watermarks, timeouts, flush modes and events at every level,
// and each stage runs on its filter's actor goroutine, so a stage is plain
// sequential code over two buffers. The same view that links a filter to
// its underlying is exported as a net.Conn, so crypto/tls, net/http and
// friends run over any bufferevent, pairs included.
//
//	u, _ := actor.New(base, tcpConn, actor.CloseOnFree)
//	sec, _ := pipeline.NewTLSClient(u, tlsConfig, pipeline.TLSOptions{Options: actor.CloseOnFree})
//	gz, _ := pipeline.NewFilter(sec, pipeline.Gunzip(), pipeline.Gzip(), actor.CloseOnFree)
//	gz.SetCallbacks(actor.Callbacks{Read: ..., Event: ...})
//
// # Stages
//
// A [Stage] is libevent's filter callback: Process(dst, src, limit, mode)
// moves at most limit bytes into dst and returns [OK], [NeedMore] or
// [Failed]. [StageFunc] adapts a function, [PassThrough] moves bytes
// unchanged (what a nil stage means) and [Chain] composes stages. The
// built-in stages are compression ([Compress], [Decompress], [Gzip],
// [Gunzip], [Deflate], [Inflate], [Zlib], [Unzlib]), line framing
// ([LineEncoder], [LineDecoder]), length-prefixed framing
// ([LengthEncoder], [LengthDecoder]) and observation ([Tap], [Counter]).
//
// # Filters
//
// [NewFilter] makes a filter; see its documentation for limits, events,
// timeouts, flushing and closing, and docs/libevent-pipeline.md for the
// mapping from libevent's names and the deliberate differences. A stage
// that fails, panics or returns an unknown result closes its filter with
// an Error event carrying the cause, and only that filter.
//
// # TLS
//
// [NewTLSClient] and [NewTLSServer] run crypto/tls over any bufferevent
// (libevent's bufferevent_openssl_filter_new): Connected once the
// handshake completes, Error with the TLS cause when it fails, close_notify
// on a graceful Drain, and Error for a peer that closes without
// close_notify unless [TLSOptions].DirtyShutdown is set.
//
// # net.Conn
//
// [NewConn] returns a [Conn], a net.Conn view of a bufferevent that passes
// golang.org/x/net/nettest's conformance suite.
package pipeline
