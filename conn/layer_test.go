package conn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// greetLayer is a conn.Layer whose handshake sends a greeting and expects
// the same from the peer: the smallest protocol that must run before the
// bufferevent owns the stream. It records the server names its
// handshakes were given.
type greetLayer struct {
	mu    sync.Mutex
	names []string
}

var errBadGreeting = errors.New("bad greeting")

const greeting = "HELLO\n"

func (g *greetLayer) Wrap(c net.Conn, serverName string) (actor.Transport, error) {
	return &greetConn{Conn: c, g: g, name: serverName}, nil
}

// greetConn is greetLayer's transport: the connection, once greeted.
type greetConn struct {
	net.Conn
	g    *greetLayer
	name string
}

func (c *greetConn) Handshake(ctx context.Context) error {
	c.g.mu.Lock()
	c.g.names = append(c.g.names, c.name)
	c.g.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := io.WriteString(c.Conn, greeting); err != nil {
		c.Close()
		return err
	}
	p := make([]byte, len(greeting))
	if _, err := io.ReadFull(c.Conn, p); err != nil {
		c.Close()
		return err
	}
	if string(p) != greeting {
		c.Close()
		return fmt.Errorf("%w: %q", errBadGreeting, p)
	}
	return nil
}

// newGreeted returns a socket over one end of a loopback TCP connection
// with greetLayer over it (CloseOnFree), and the other end, the peer.
func newGreeted(t *testing.T) (*conn.Socket, net.Conn) {
	t.Helper()
	c1, c2 := testconn.TCPConns(t)
	s, err := conn.NewLayered(testbev.NewBase(t), c1, &greetLayer{}, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	return s, c2
}

func (g *greetLayer) serverNames() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.names...)
}

// layerEvents records a socket's events and input.
type layerEvents struct {
	events chan actor.EventInfo
	data   chan []byte
}

func watchLayered(s *actor.Bufferevent) *layerEvents {
	w := &layerEvents{events: make(chan actor.EventInfo, 8), data: make(chan []byte, 64)}
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			p := make([]byte, s.Input().Len())
			s.Input().Read(p)
			w.data <- p
		},
		Event: func(_ *actor.Session, ev actor.Event, err error) {
			w.events <- actor.EventInfo{Event: ev, Err: err}
		},
	})
	s.Enable(actor.Read | actor.Write)
	return w
}

// readN collects n bytes of input.
func (w *layerEvents) readN(t *testing.T, n int) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		got = append(got, testkit.Recv(t, w.data, "input")...)
	}
	return got
}

// TestLayerHandshake: a socket made with NewLayered over a connection
// runs the layer's handshake once it first wants I/O, whatever type its
// methods are called through (here only the embedded *actor.Bufferevent,
// as generic code holds it), reports one Connected, and sends what was
// written before the handshake after it; the bytes of the handshake never
// reach the bufferevents. The connection is the socket's from the start:
// Conn reports its addresses before the handshake.
func TestLayerHandshake(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	la, lb := &greetLayer{}, &greetLayer{}
	a, err := conn.NewLayered(base, c1, la, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := conn.NewLayered(base, c2, lb, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Layer() != conn.Layer(la) || b.Layer() != conn.Layer(lb) {
		t.Errorf("Layer() = %v, %v, want the layers given", a.Layer(), b.Layer())
	}
	if nc := a.Conn(); nc == nil || nc.RemoteAddr().String() != c1.RemoteAddr().String() {
		t.Errorf("Conn() before the handshake = %v, want one with the connection's addresses", nc)
	}
	var ba, bb *actor.Bufferevent = a.Bufferevent, b.Bufferevent
	if err := ba.Write([]byte("early")); err != nil { // starts a's handshake
		t.Fatal(err)
	}
	wa, wb := watchLayered(ba), watchLayered(bb) // Enable starts b's
	for _, w := range []*layerEvents{wa, wb} {
		if e := testkit.Recv(t, w.events, "Connected"); e.Event != actor.Connected {
			t.Fatalf("event %v (%v), want Connected", e.Event, e.Err)
		}
	}
	if err := bb.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := wb.readN(t, 5); string(got) != "early" {
		t.Errorf("b read %q, want %q", got, "early")
	}
	if got := wa.readN(t, 5); string(got) != "reply" {
		t.Errorf("a read %q, want %q", got, "reply")
	}
	if len(wa.events)+len(wb.events) != 0 {
		t.Errorf("more events: %d and %d, want none", len(wa.events), len(wb.events))
	}
}

// TestLayerHandshakeStarts: each way generic code asks a bufferevent for
// I/O starts the handshake of a socket made over a connection (the peer
// sees the greeting), and a socket nobody asks anything of does not
// answer its peer. Closing it then returns nil, handshake or none.
func TestLayerHandshakeStarts(t *testing.T) {
	cases := []struct {
		name string
		ask  func(b *actor.Bufferevent)
	}{
		{"nothing", func(b *actor.Bufferevent) { b.SetCallbacks(actor.Callbacks{}) }},
		{"Enable", func(b *actor.Bufferevent) { b.Enable(actor.Read) }},
		{"Write", func(b *actor.Bufferevent) { b.Write([]byte("x")) }},
		{"In", func(b *actor.Bufferevent) { b.In() }},
		{"Flush", func(b *actor.Bufferevent) { b.Flush(actor.Write, actor.Finished) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c2 := newGreeted(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close = %v, want nil", err)
				}
			}()
			tc.ask(s.Bufferevent)
			if tc.name == "nothing" {
				// Whatever the actor does next, it does after this Do.
				if err := s.Do(func(*actor.Session) {}); err != nil {
					t.Fatal(err)
				}
				c2.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if n, err := c2.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("peer read %d, %v from an idle layered socket, want nothing", n, err)
				}
				return
			}
			c2.SetReadDeadline(time.Now().Add(testkit.WaitTime))
			p := make([]byte, len(greeting))
			if _, err := io.ReadFull(c2, p); err != nil || string(p) != greeting {
				t.Errorf("peer read %q, %v, want the greeting", p, err)
			}
		})
	}
}

// TestLayerCloseDuringHandshake: Close while the layer's handshake waits
// for the peer cancels it and returns nil. A handshake that closes its
// connection on cancellation (as this layer's and crypto/tls's do) leaves
// the actor's own close of the transport to find it closed already: that
// is the close Close asked for, not an error (it once returned "use of
// closed network connection").
func TestLayerCloseDuringHandshake(t *testing.T) {
	s, c2 := newGreeted(t)
	s.Enable(actor.Read)
	// The greeting came: the handshake now waits for the peer's, which
	// never comes.
	c2.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if _, err := io.ReadFull(c2, make([]byte, len(greeting))); err != nil {
		t.Fatalf("peer read the greeting: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close during the handshake = %v, want nil", err)
	}
}

// TestLayerHandshakeFails: a failed handshake is one Error event with its
// cause, and no read callback.
func TestLayerHandshakeFails(t *testing.T) {
	a, c2 := newGreeted(t)
	defer a.Close()
	w := watchLayered(a.Bufferevent)
	if _, err := io.WriteString(c2, "HOWDY!data after it"); err != nil {
		t.Fatal(err)
	}
	e := testkit.Recv(t, w.events, "the Error event")
	if e.Event != actor.Error || !errors.Is(e.Err, errBadGreeting) {
		t.Errorf("event %v (%v), want Error with errBadGreeting", e.Event, e.Err)
	}
	a.Close()
	if len(w.data) != 0 || len(w.events) != 0 {
		t.Errorf("%d reads and %d more events after a failed handshake, want none", len(w.data), len(w.events))
	}
}

// TestLayerConnectAndListener: ConnectAddr runs the layer after the dial
// with the address's host as the server name, and a Listener with a
// Layer gives each accepted socket a layer of its own.
func TestLayerConnectAndListener(t *testing.T) {
	base := testbev.NewBase(t)
	var (
		mu     sync.Mutex
		layers []*greetLayer
	)
	accepted := make(chan *conn.Socket, 2)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{
		Options: actor.CloseOnFree,
		Layer: func() conn.Layer {
			mu.Lock()
			defer mu.Unlock()
			l := &greetLayer{}
			layers = append(layers, l)
			return l
		},
	}, func(s *conn.Socket) { accepted <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := range 2 {
		cl := &greetLayer{}
		client, err := conn.NewLayered(base, nil, cl, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		wc := watchLayered(client.Bufferevent)
		if err := client.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		server := testkit.Recv(t, accepted, "an accepted socket")
		defer server.Close()
		ws := watchLayered(server.Bufferevent)
		for _, w := range []*layerEvents{wc, ws} {
			if e := testkit.Recv(t, w.events, "Connected"); e.Event != actor.Connected {
				t.Fatalf("connection %d: event %v (%v), want Connected", i, e.Event, e.Err)
			}
		}
		msg := []byte(fmt.Sprintf("message %d", i))
		client.Write(msg)
		if got := ws.readN(t, len(msg)); !bytes.Equal(got, msg) {
			t.Errorf("server read %q, want %q", got, msg)
		}
		if names := cl.serverNames(); len(names) != 1 || names[0] != "127.0.0.1" {
			t.Errorf("client layer's server names %q, want [127.0.0.1]", names)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(layers) != 2 || layers[0] == layers[1] {
		t.Fatalf("listener made %d layers, want 2 distinct", len(layers))
	}
	for i, l := range layers {
		if names := l.serverNames(); len(names) != 1 || names[0] != "" {
			t.Errorf("accepted layer %d's server names %q, want one empty", i, names)
		}
	}
}

// TestLayerOpen: NewLayeredOpen uses the connection as it is: no
// handshake, no Connected event; and a nil layer is refused.
func TestLayerOpen(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	l := &greetLayer{}
	a, err := conn.NewLayeredOpen(base, c1, l, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := watchLayered(a.Bufferevent)
	if _, err := io.WriteString(c2, "data"); err != nil {
		t.Fatal(err)
	}
	if got := w.readN(t, 4); string(got) != "data" {
		t.Errorf("read %q, want %q (no handshake)", got, "data")
	}
	if len(w.events) != 0 || len(l.serverNames()) != 0 {
		t.Errorf("%d events, %d handshakes on an open layered socket, want none", len(w.events), len(l.serverNames()))
	}
	if a.Layer() != conn.Layer(l) {
		t.Errorf("Layer() = %v, want the layer given", a.Layer())
	}
	if _, err := conn.NewLayered(base, nil, nil, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewLayered(nil layer) = %v, want ErrInvalid", err)
	}
	if _, err := conn.NewLayeredOpen(base, c1, nil, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewLayeredOpen(nil layer) = %v, want ErrInvalid", err)
	}
}
