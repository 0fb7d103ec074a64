package conn

import (
	"context"
	"fmt"
	"net"

	"github.com/bevgo/bev/actor"
)

// ConnectAddr connects the socket to address on network, as net.Dialer
// understands them ("tcp", "tcp4", "tcp6", "unix", …; address such as
// "127.0.0.1:80" or a socket path): libevent's
// bufferevent_socket_connect. As libevent's, the connection has no TCP
// keep-alive (a zero net.Dialer would turn it on); ConnectWith with a
// net.Dialer of your own sets it. The dial (and, on a layered socket, the
// layer's handshake, given the address's host as the server name) runs
// on a goroutine the socket owns: its actor's own when it has nothing
// else to do meanwhile (no timeouts, stages or rate limit: see
// actor.Bufferevent.ConnectNet), which saves a goroutine per connect, so
// that a Do made meanwhile waits until the dial returns. The
// socket then reports exactly one event: actor.Connected, or actor.Error
// with the cause (a refused connection, for instance), and no read or
// write callback on failure. Writes made before the connect completes are
// sent after it. Close, or the end of ctx, cancels the connect.
//
// ConnectAddr returns at once. It fails with an error wrapping
// actor.ErrBusy while another connect is in flight and actor.ErrClosed
// after the socket has stopped, and then reports no event. A connection
// already in place is closed when the new one is made.
func (s *Socket) ConnectAddr(ctx context.Context, network, address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = ""
	}
	return s.connect(ctx, host, true, func(ctx context.Context) (net.Conn, error) {
		d := noKeepAlive
		return d.DialContext(ctx, network, address)
	})
}

// ConnectWith is ConnectAddr with the connection made by dial, which runs
// on a connect goroutine of the socket's own (never its actor's, so that
// dial may wait for anything) with a context that ends on Close or
// with ctx; on a layered socket the layer's handshake follows (with TLS, the
// configuration must name the server, or skip verification). Use it for a custom
// net.Dialer, a proxy, or any net.Conn. It fails as ConnectAddr does, and
// with an error wrapping actor.ErrInvalid for a nil dial.
func (s *Socket) ConnectWith(ctx context.Context, dial func(ctx context.Context) (net.Conn, error)) error {
	if dial == nil {
		return fmt.Errorf("conn: connect: %w: nil dial function", actor.ErrInvalid)
	}
	return s.connect(ctx, "", false, dial)
}

// connect runs dial and then, on a layered socket, the handshake, both on
// a goroutine the bufferevent owns, so that Close cancels and joins them
// and the Connected event means the stream is ready. netOnly says dial
// waits on nothing but the network (conn's own dials), so the actor may
// run it itself (actor.Bufferevent.ConnectNet).
func (s *Socket) connect(ctx context.Context, serverName string, netOnly bool, dial func(context.Context) (net.Conn, error)) error {
	connect := s.Bufferevent.Connect
	if netOnly {
		connect = s.Bufferevent.ConnectNet
	}
	err := connect(ctx, func(ctx context.Context) (actor.Transport, error) {
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, nil // the actor reports ErrNoTransport
		}
		if s.layer == nil {
			return c, nil
		}
		t, err := s.layer.Wrap(c, serverName)
		if err != nil {
			c.Close()
			return nil, err
		}
		if h, ok := t.(actor.Handshaker); ok {
			if err := h.Handshake(ctx); err != nil {
				return nil, err
			}
		}
		return t, nil
	})
	if err != nil {
		return fmt.Errorf("conn: connect: %w", err)
	}
	return nil
}
