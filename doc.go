// Package bev is libevent's bufferevents rebuilt in Go as actors: byte
// streams with input and output buffers, watermarks, timeouts, rate limits
// and filters, where each stream is one goroutine that owns its state and
// a reader and a writer loop own its blocking I/O. You drive a stream with
// libevent-style callbacks that run on its actor (zero-copy, no locks) or
// with channels (backpressure from the consumer to the peer), compose
// streams into pipelines, and close them knowing that every goroutine has
// been joined.
//
// This package holds only this front page and the end-to-end tests; the
// code lives in its subpackages:
//
//   - [github.com/bevgo/bev/actor]: the bufferevent actor, its Buffer, the
//     Base that supervises bufferevents, and in-memory pairs.
//   - [github.com/bevgo/bev/conn]: socket bufferevents over net.Conn:
//     connect, connect by host name, listeners, and layers run over the
//     connection; [github.com/bevgo/bev/conn/tlsconn] is TLS on a socket.
//   - [github.com/bevgo/bev/pipeline]: filters as stages (compression,
//     framing, TLS over any bufferevent) and a net.Conn view;
//     [github.com/bevgo/bev/pipeline/toxic] is toxiproxy's toxics (latency,
//     bandwidth, resets, ...) as stages, for breaking the network in tests.
//   - [github.com/bevgo/bev/limiter]: token buckets and rate-limit groups;
//     [github.com/bevgo/bev/limiter/redisgroup] shares a group's budget
//     among processes through Redis.
//   - [github.com/bevgo/bev/clock]: the clock that timeouts and rate
//     limits share, which tests replace.
//
// # A first program
//
// Two bufferevents wired in memory; the server echoes in upper case from a
// callback, the client uses channels:
//
//	base := actor.NewBase()
//	defer base.Close() // closes and joins every bufferevent it owns
//
//	client, server, err := actor.NewPair(base, 0)
//	if err != nil {
//		log.Fatal(err)
//	}
//	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
//		p := make([]byte, s.Input().Len())
//		s.Input().Read(p)
//		s.Write(bytes.ToUpper(p)) // runs on the server's actor goroutine
//	}})
//	server.Enable(actor.Read) // reading starts disabled, as in libevent
//
//	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
//	defer cancel()
//	in := client.In() // asking for input enables reading
//	if err := client.Send(ctx, []byte("hello, bev")); err != nil {
//		log.Fatal(err)
//	}
//	fmt.Printf("%s\n", <-in) // HELLO, BEV
//
// This is the package's Example (example_test.go), copied verbatim; a test
// (TestDocSnippets) fails if the two drift apart.
//
// See docs/tutorial.md in the repository for a guided path, and
// docs/libevent.md for the mapping from every libevent name to bev.
package bev
