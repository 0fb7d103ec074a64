package conn

import (
	"fmt"
	"net"

	"github.com/bevgo/bev/actor"
)

// A Layer is a protocol a socket runs over each connection it gets before
// its bufferevent reads and writes it: a handshake that turns the plain
// connection into the transport the bufferevent uses. TLS is one
// (package conn/tlsconn); keeping it behind this interface is what keeps
// crypto/tls out of programs that only use plain sockets.
//
// Wrap makes the transport; when the protocol must handshake first, the
// transport is an actor.Handshaker, and the socket's bufferevent runs
// that handshake itself (see actor.Handshaker): on a connection given to
// NewLayered (or accepted by a Listener) as soon as it first wants I/O,
// whichever type its methods are called through; after ConnectAddr,
// ConnectHostname or ConnectWith right after the dial, on the goroutine
// that dialled. Either way Close cancels the handshake, and the socket
// reports its outcome as one event: actor.Connected once it completes,
// actor.Error with its cause otherwise (and no read or write callback).
// Writes made before then are sent after it.
type Layer interface {
	// Wrap returns the transport the socket uses over c. serverName is
	// the host the caller connected to (ConnectAddr's or
	// ConnectHostname's), or "" when none was named. The transport's
	// Handshake, if it has one, closes c when it fails, and must return
	// when its ctx ends. On failure Wrap returns the cause and leaves c
	// open.
	Wrap(c net.Conn, serverName string) (actor.Transport, error)
}

// NewLayered returns a socket that runs layer over its connections. c,
// when not nil, is a plain connection the layer runs on: the socket's
// transport from the start (so Conn reports its addresses at once), whose
// handshake runs when the socket first wants I/O (see Layer). With c
// nil, ConnectAddr, ConnectHostname and ConnectWith run the handshake
// after each dial. NewLayered fails with an error wrapping
// actor.ErrInvalid for a nil layer, with Wrap's error, and otherwise as
// New; c is not closed then.
func NewLayered(base *actor.Base, c net.Conn, layer Layer, opts actor.Option) (*Socket, error) {
	if layer == nil {
		return nil, fmt.Errorf("conn: new layered socket: %w: nil layer", actor.ErrInvalid)
	}
	if c == nil {
		return NewLayeredOpen(base, nil, layer, opts)
	}
	t, err := layer.Wrap(c, "")
	if err != nil {
		return nil, fmt.Errorf("conn: new layered socket: %w", err)
	}
	b, err := actor.New(base, t, opts)
	if err != nil {
		return nil, fmt.Errorf("conn: new socket: %w", err)
	}
	return &Socket{Bufferevent: b, layer: layer}, nil
}

// NewLayeredOpen returns a socket that runs layer over its connections,
// over t, a connection on which the layer's handshake is already done
// (or over none, when t is nil): the bufferevent uses t as it is, and
// reports no Connected for it. A later ConnectAddr, ConnectHostname or
// ConnectWith runs the handshake over the new connection. It fails as
// NewLayered does.
func NewLayeredOpen(base *actor.Base, t net.Conn, layer Layer, opts actor.Option) (*Socket, error) {
	if layer == nil {
		return nil, fmt.Errorf("conn: new layered socket: %w: nil layer", actor.ErrInvalid)
	}
	s, err := New(base, t, opts)
	if err != nil {
		return nil, err
	}
	s.layer = layer
	return s, nil
}

// Layer returns the layer the socket runs over its connections, nil for
// a plain socket. Package conn/tlsconn's Of uses it to find a socket's
// TLS state.
func (s *Socket) Layer() Layer { return s.layer }
