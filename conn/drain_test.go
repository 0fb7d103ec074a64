package conn_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Drain delivers every byte it reports written even when the peer sent
// more that was never read: closing a TCP connection with unread input
// sends a reset, which throws away output the peer has not read yet, so
// Drain lingers, reading and dropping until the peer's EOF.
func TestDrainWithUnreadInput(t *testing.T) {
	base := testbev.NewBase(t)
	accepted := make(chan *conn.Socket, 1)
	var moved atomic.Int64
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
		s.SetCallbacks(actor.Callbacks{Read: func(ss *actor.Session) {
			moved.Add(int64(ss.Input().Len()))
			ss.Output().MoveFrom(ss.Input())
		}})
		s.SetWatermark(actor.Write, 0, 1<<30) // let the echo queue: the client reads nothing yet
		s.Enable(actor.Read | actor.Write)
		accepted <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitTime))
	s := testkit.Recv(t, accepted, "accept")
	first := testkit.Pattern(512 << 10)
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	for i := 0; moved.Load() < int64(len(first)); i++ {
		if i > 10000 {
			t.Fatalf("the server accepted %d of %d bytes", moved.Load(), len(first))
		}
		s.Do(func(*actor.Session) {}) // one actor step; bounded in count
	}
	s.Disable(actor.Read)
	s.Do(func(*actor.Session) {})
	if _, err := c.Write(make([]byte, 64<<10)); err != nil { // never read by the server
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
		defer cancel()
		drained <- s.Drain(ctx)
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("client read %d bytes, then %v; want all %d and EOF", len(got), err, len(first))
	}
	if !bytes.Equal(got, first) {
		t.Fatalf("client read %d bytes, want the %d the server accepted", len(got), len(first))
	}
	c.Close() // the peer's close ends the server's lingering
	if err := testkit.Recv(t, drained, "Drain"); err != nil {
		t.Errorf("Drain() = %v", err)
	}
}

// Drain's linger is bounded: a peer that reads everything but never
// closes its side lets Drain return once the linger time (2 s) has passed
// since the half-close, with every byte delivered; the linger's timer
// wakes the socket's actor out of its own wait in the socket.
func TestDrainLingerBounded(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	s, err := conn.New(base, c2, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	want := testkit.Pattern(64 << 10)
	if err := s.Write(want); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
		defer cancel()
		drained <- s.Drain(ctx)
	}()
	c1.SetDeadline(time.Now().Add(testkit.WaitTime))
	got, err := io.ReadAll(c1) // the half-close ends it; c1 stays open
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("peer read %d bytes, %v; want the %d written and EOF", len(got), err, len(want))
	}
	if err := testkit.Recv(t, drained, "Drain, after its linger"); err != nil {
		t.Errorf("Drain() = %v, want nil", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("Drain returned after %v with the peer still open, want it to linger (2 s)", d)
	}
}
