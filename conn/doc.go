// Package conn puts bufferevents on network connections: a [Socket] is an
// actor.Bufferevent whose transport is a net.Conn (TCP, Unix, or any
// other), made over a connection you have ([New]), connected later to an
// address ([Socket.ConnectAddr]) or a host name ([Socket.ConnectHostname]),
// or handed over by a [Listener] that accepts them; a [Layer] runs a
// protocol such as TLS over the connection before the bufferevent uses it
// (package conn/tlsconn makes TLS sockets). The dial, the lookup and the
// layer's handshake all run on a goroutine the socket owns (its actor's
// own when it has nothing else to do meanwhile), so Close cancels and
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
// TCP keep-alive is off on connected and accepted sockets, as on
// libevent's, though Go's zero net.Dialer and net.Listen turn it on (at
// four setsockopt calls per connection): a bufferevent's timeouts are how
// a program notices a quiet peer. [ListenerConfig].KeepAlive turns it on
// for accepted connections, and ConnectWith with a net.Dialer of your own
// for connected ones.
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
// TLS sockets live in package conn/tlsconn, so that a program with plain
// sockets only does not link crypto/tls: tlsconn.New makes a socket that
// runs crypto/tls's handshake as its [Layer], and
// ListenerConfig{Layer: tlsconn.Server(cfg)} accepts TLS sockets. They
// are Sockets like any other; tlsconn.Of gives their TLS state.
package conn
