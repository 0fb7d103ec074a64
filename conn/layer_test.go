package conn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

// greetLayer is a conn.Layer whose handshake sends a greeting and expects
// the same from the peer: the smallest protocol that must run before the
// bufferevent owns the stream. It records the server names it was given.
type greetLayer struct {
	mu    sync.Mutex
	names []string
}

var errBadGreeting = errors.New("bad greeting")

const greeting = "HELLO\n"

func (g *greetLayer) Handshake(ctx context.Context, c net.Conn, serverName string) (actor.Transport, error) {
	g.mu.Lock()
	g.names = append(g.names, serverName)
	g.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := io.WriteString(c, greeting); err != nil {
		c.Close()
		return nil, err
	}
	p := make([]byte, len(greeting))
	if _, err := io.ReadFull(c, p); err != nil {
		c.Close()
		return nil, err
	}
	if string(p) != greeting {
		c.Close()
		return nil, fmt.Errorf("%w: %q", errBadGreeting, p)
	}
	return c, nil
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

func watchLayered(s *conn.Socket) *layerEvents {
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
		got = append(got, recv(t, w.data, "input")...)
	}
	return got
}

// TestLayerHandshake: a socket made with NewLayered over a connection runs
// the layer's handshake once its callbacks are set, reports one
// Connected, and sends what was written before the handshake after it;
// the bytes of the handshake never reach the bufferevents.
func TestLayerHandshake(t *testing.T) {
	base := newBase(t)
	c1, c2 := tcpConns(t)
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
	if a.Layer() != la || b.Layer() != lb {
		t.Errorf("Layer() = %v, %v, want the layers given", a.Layer(), b.Layer())
	}
	if err := a.Bufferevent.Write([]byte("early")); err != nil { // does not start the handshake
		t.Fatal(err)
	}
	wa, wb := watchLayered(a), watchLayered(b)
	for _, w := range []*layerEvents{wa, wb} {
		if e := recv(t, w.events, "Connected"); e.Event != actor.Connected {
			t.Fatalf("event %v (%v), want Connected", e.Event, e.Err)
		}
	}
	if err := b.Write([]byte("reply")); err != nil {
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

// TestLayerHandshakeFails: a failed handshake is one Error event with its
// cause, and no read callback.
func TestLayerHandshakeFails(t *testing.T) {
	base := newBase(t)
	c1, c2 := tcpConns(t)
	a, err := conn.NewLayered(base, c1, &greetLayer{}, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := watchLayered(a)
	if _, err := io.WriteString(c2, "HOWDY!data after it"); err != nil {
		t.Fatal(err)
	}
	e := recv(t, w.events, "the Error event")
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
	base := newBase(t)
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
		wc := watchLayered(client)
		if err := client.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		server := recv(t, accepted, "an accepted socket")
		defer server.Close()
		ws := watchLayered(server)
		for _, w := range []*layerEvents{wc, ws} {
			if e := recv(t, w.events, "Connected"); e.Event != actor.Connected {
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
	base := newBase(t)
	c1, c2 := tcpConns(t)
	l := &greetLayer{}
	a, err := conn.NewLayeredOpen(base, c1, l, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	w := watchLayered(a)
	if _, err := io.WriteString(c2, "data"); err != nil {
		t.Fatal(err)
	}
	if got := w.readN(t, 4); string(got) != "data" {
		t.Errorf("read %q, want %q (no handshake)", got, "data")
	}
	if len(w.events) != 0 || len(l.serverNames()) != 0 {
		t.Errorf("%d events, %d handshakes on an open layered socket, want none", len(w.events), len(l.serverNames()))
	}
	if a.Layer() != l {
		t.Errorf("Layer() = %v, want the layer given", a.Layer())
	}
	if _, err := conn.NewLayered(base, nil, nil, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewLayered(nil layer) = %v, want ErrInvalid", err)
	}
	if _, err := conn.NewLayeredOpen(base, c1, nil, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewLayeredOpen(nil layer) = %v, want ErrInvalid", err)
	}
}
