// Package actor is the heart of bev: libevent's bufferevent as a goroutine
// actor. A [Bufferevent] is a byte stream with an input and an output
// [Buffer], watermarks, timeouts and optional filter stages; one goroutine
// owns all of that state, and a reader loop and a writer loop own the
// blocking I/O of its [Transport] (a net.Conn, one end of an in-memory
// pair, or another bufferevent). Everything else talks to it by message,
// so every method is safe from any goroutine, and Close joins all three
// goroutines. (An idle TCP or Unix socket is just the actor: it waits in
// the socket itself, and starts the loops only when it needs them.) A [Base] supervises a set of bufferevents, runs their
// deferred callbacks in priority order and carries the clock.
//
// # Two views of one stream
//
// Callbacks, libevent's way, run on the actor goroutine and get a
// [Session] holding the real buffers: a read callback may move the whole
// input into another bufferevent's output without copying, and may call
// any method of any bufferevent, its own included, without deadlock.
//
//	b.SetCallbacks(actor.Callbacks{
//		Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) }, // echo
//		Event: func(s *actor.Session, ev actor.Event, err error) {
//			if ev&(actor.EOF|actor.Error) != 0 {
//				s.Close()
//			}
//		},
//	})
//	b.Enable(actor.Read)
//
// Channels, Go's way: [Bufferevent.In] delivers input chunks and is closed
// after EOF; [Bufferevent.Send] (or a send on [Bufferevent.Out]) blocks
// while the output is at its high watermark; [Bufferevent.Events] reports
// events. A slow consumer fills the input, reading stops at the read high
// watermark, and the peer is pushed back: backpressure end to end.
//
// # The io.Reader and io.Writer view
//
// A Bufferevent's own calls are libevent's and never wait for the stream:
// [Bufferevent.TryRead] returns 0 on an empty input, [Bufferevent.Write]
// queues whatever the watermarks. Go's streaming contract is one view
// away: [github.com/bevgo/bev/pipeline.NewConn] wraps a bufferevent in a
// net.Conn whose Read blocks until at least one byte and returns io.EOF
// after the peer's EOF, and whose Write blocks at the write high watermark
// and returns the stream's error once it has failed. It is what to hand
// bufio, io.Copy, fmt.Fprintf, crypto/tls or net/http.
//
// # Reading starts disabled
//
// As in libevent, a new bufferevent has writing enabled and reading
// disabled: call Enable(Read), or ask for In, which enables it.
//
// # Lifetimes
//
// Close (libevent's free, plus a wait) drops pending output and returns
// once the actor and both loops have exited; Free is the same without the
// wait and is safe inside callbacks; Drain writes everything first. A
// Base's Close closes and joins everything it owns. Nothing this package
// starts outlives those calls.
package actor
