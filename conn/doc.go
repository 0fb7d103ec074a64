// Package conn puts bufferevents on network connections: a [Socket] is an
// actor.Bufferevent whose transport is a net.Conn (TCP, Unix, or any
// other), made over a connection you have ([New]), connected later to an
// address ([Socket.ConnectAddr]) or a host name ([Socket.ConnectHostname]),
// or handed over by a [Listener] that accepts them; [NewTLS] makes the same
// socket speak TLS through crypto/tls. The dial, the lookup and the TLS
// handshake all run on a goroutine the socket owns, so Close cancels and
// joins them, and each connect ends in exactly one event: actor.Connected
// or actor.Error. This is libevent's bufferevent_sock.c,
// bufferevent_openssl.c and evconnlistener, with libevent's names mapped in
// docs/libevent-conn.md.
//
// # An echo server
//
//	base := actor.NewBase()
//	defer base.Close() // closes the listener and every accepted socket
//	ln, err := conn.Listen(base, "tcp", "127.0.0.1:9000",
//		conn.ListenerConfig{Options: actor.CloseOnFree},
//		func(s *conn.Socket) {
//			s.SetCallbacks(actor.Callbacks{
//				Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
//				Event: func(s *actor.Session, ev actor.Event, err error) {
//					if ev&(actor.EOF|actor.Error) != 0 {
//						s.Close()
//					}
//				},
//			})
//			s.Enable(actor.Read | actor.Write)
//		})
//
// examples/echo is the complete program, which also stops reading while
// 64 KiB of echo waits to be sent (a bufferevent, like libevent's, reads
// on whatever its output holds) and lets pending output drain before it
// closes on EOF.
//
// # Connecting
//
// A socket made with a nil connection buffers what is written to it until
// it connects. ConnectAddr dials an address, ConnectHostname resolves a
// name through a *net.Resolver of your choice and tries each address in
// turn, and ConnectWith takes any dial function. All three return at once
// and report the outcome as one event; a failed connect calls no read or
// write callback. The error of the last failed lookup stays available
// from [Socket.DNSError] as a *net.DNSError.
//
// # Closing
//
// Close is libevent's free: immediate, pending output dropped, the
// connection closed with actor.CloseOnFree. Drain is the graceful close:
// it writes every byte, half-closes the connection (the peer reads EOF;
// on TLS it sends close_notify), then closes. A peer's EOF arrives as
// actor.Reading|actor.EOF after every byte before it was delivered.
//
// # TLS
//
// A TLS socket is in state [TLSConnecting] or [TLSAccepting] until its
// handshake completes, then [TLSOpen]. TLS 1.2 is the minimum and
// certificates are verified unless the configuration says otherwise. A
// peer that closes without close_notify is an error (the stream may have
// been cut), or EOF with [TLSDirtyShutdown]; [Socket.TLSError] keeps the
// TLS error of the last failure.
package conn
