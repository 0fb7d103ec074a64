package conn

import (
	"context"
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
// A socket calls Handshake on the goroutine that runs its connect, so
// Close cancels ctx and joins the handshake, and the socket reports its
// outcome as the connect's one event: actor.Connected once Handshake
// returns a transport, actor.Error with the error it returns otherwise
// (and no read or write callback). Writes made before then are sent
// after it.
type Layer interface {
	// Handshake runs the layer's handshake over c and returns the
	// transport the bufferevent then uses. serverName is the host the
	// caller connected to (ConnectAddr's or ConnectHostname's), or ""
	// when none was named. On failure Handshake closes c and returns the
	// cause; it must return when ctx ends.
	Handshake(ctx context.Context, c net.Conn, serverName string) (actor.Transport, error)
}

// NewLayered returns a socket that runs layer over its connections. c,
// when not nil, is a plain connection the layer's handshake runs on; so
// that no outcome is reported before there is a callback or channel to
// hear it, the handshake starts at the first call of the Socket's
// SetCallbacks, Enable, In, Events, Write or Drain (the same methods
// reached through the embedded *actor.Bufferevent do not start it). With
// c nil, ConnectAddr, ConnectHostname and ConnectWith run the handshake
// after each dial. NewLayered fails with an error wrapping
// actor.ErrInvalid for a nil layer, and otherwise as New; c is not closed
// then.
func NewLayered(base *actor.Base, c net.Conn, layer Layer, opts actor.Option) (*Socket, error) {
	s, err := NewLayeredOpen(base, nil, layer, opts)
	if err != nil || c == nil {
		return s, err
	}
	// Waiting inside the dial keeps c owned by the bufferevent: Close
	// cancels the wait and c is closed.
	s.start = make(chan struct{})
	err = s.connect(context.Background(), "", func(ctx context.Context) (net.Conn, error) {
		select {
		case <-s.start:
			return c, nil
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		}
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
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

// SetCallbacks is actor.Bufferevent.SetCallbacks. On a socket made by
// NewLayered over a connection, the first call of SetCallbacks, Enable,
// In, Events, Write or Drain also starts the layer's handshake.
func (s *Socket) SetCallbacks(cbs actor.Callbacks) {
	s.Bufferevent.SetCallbacks(cbs)
	s.startLayer()
}

// Enable is actor.Bufferevent.Enable, and may start a layer's handshake
// (see SetCallbacks).
func (s *Socket) Enable(d actor.Dir) error {
	s.startLayer()
	return s.Bufferevent.Enable(d)
}

// In is actor.Bufferevent.In, and may start a layer's handshake (see
// SetCallbacks).
func (s *Socket) In() <-chan []byte {
	defer s.startLayer()
	return s.Bufferevent.In()
}

// Events is actor.Bufferevent.Events, and may start a layer's handshake
// (see SetCallbacks).
func (s *Socket) Events() <-chan actor.EventInfo {
	defer s.startLayer()
	return s.Bufferevent.Events()
}

// Write is actor.Bufferevent.Write, and may start a layer's handshake
// (see SetCallbacks).
func (s *Socket) Write(p []byte) error {
	defer s.startLayer()
	return s.Bufferevent.Write(p)
}

// Drain is actor.Bufferevent.Drain, and may start a layer's handshake
// (see SetCallbacks).
func (s *Socket) Drain(ctx context.Context) error {
	s.startLayer()
	return s.Bufferevent.Drain(ctx)
}

func (s *Socket) startLayer() {
	if s.start != nil {
		s.startOnce.Do(func() { close(s.start) })
	}
}
