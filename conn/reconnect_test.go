package conn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// A socket whose write failed (the peer reset it) connects again, as
// libevent's reconnect does: the new connection starts with a working
// output and a new, open Failed channel, and once writing is enabled again
// (the failure disabled it, as libevent's error does) what is written
// reaches the new peer, after what the output still held, as libevent's
// output buffer keeps it. Writes failed for ever before: the output kept
// the first connection's reset.
func TestReconnectAfterWriteFailure(t *testing.T) {
	rs := newReconnecting(t)
	s, evs := rs.s, rs.evs

	c1 := rs.connect(t)
	c1.SetLinger(0)
	c1.Close() // a reset
	// A write may go before the reset reaches the socket: write until one
	// fails (a handful, on loopback).
	for i := 0; !testkit.Closed(s.Failed()); i++ {
		if i == 100000 {
			t.Fatalf("no write failed after the peer's reset")
		}
		s.Write([]byte("x")) //nolint:errcheck // fails once Failed is closed
	}
	e := waitEvent(t, evs, actor.Writing)
	if !errors.Is(e.Err, syscall.ECONNRESET) && !errors.Is(e.Err, syscall.EPIPE) {
		t.Fatalf("write failure %v, want a reset or a broken pipe", e.Err)
	}
	testkit.Recv(t, s.Failed(), "Failed after the reset")
	left := s.OutputLen() // what the first connection did not take stays queued

	c2 := rs.connect(t)
	if testkit.Closed(s.Failed()) {
		t.Fatalf("Failed is closed on the new connection")
	}
	if err := s.Write([]byte("hello")); err != nil {
		t.Fatalf("Write() on the new connection = %v", err)
	}
	if err := s.Enable(actor.Write); err != nil {
		t.Fatalf("Enable(Write) = %v", err)
	}
	if err := s.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatalf("Flush(Write, Finished) = %v", err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c2)
		got <- b
	}()
	want := strings.Repeat("x", left) + "hello"
	if b := testkit.Recv(t, got, "the new peer's read to EOF"); string(b) != want {
		t.Errorf("the new peer read %q, want %q: what was queued, then the new write", b, want)
	}
}

// waitEvent receives events until one has a bit of want, and returns it.
func waitEvent(t *testing.T, evs <-chan actor.EventInfo, want actor.Event) actor.EventInfo {
	t.Helper()
	for {
		if e := testkit.Recv(t, evs, want.String()+" event"); e.Event&want != 0 {
			return e
		}
	}
}

// reconnecting is a socket that connects again and again, each time to
// a new listener on loopback, with its events on evs.
type reconnecting struct {
	s   *conn.Socket
	evs chan actor.EventInfo
}

// newReconnecting makes a socket with no connection yet (CloseOnFree), its
// event callback sending every event on evs.
func newReconnecting(t *testing.T) *reconnecting {
	t.Helper()
	s, err := conn.New(testbev.NewBase(t), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("conn.New() = %v", err)
	}
	evs := make(chan actor.EventInfo, 16)
	s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		evs <- actor.EventInfo{Event: ev, Err: err}
	}})
	return &reconnecting{s: s, evs: evs}
}

// connect connects the socket to a new listener and returns the accepted
// peer, closed at cleanup, once the socket has reported Connected.
func (rs *reconnecting) connect(t *testing.T) *net.TCPConn {
	t.Helper()
	ln := testconn.Listen(t)
	if err := rs.s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
		t.Fatalf("ConnectAddr() = %v", err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept() = %v", err)
	}
	t.Cleanup(func() { c.Close() })
	waitEvent(t, rs.evs, actor.Connected)
	return c.(*net.TCPConn)
}

// A socket read through In connects again after its stream ended: In,
// closed at the first stream's EOF, returns a new channel for the new
// stream, and its first call enables reading again, as the first call
// ever did (the EOF disabled it, as libevent's does). Before, In returned
// the closed channel for good and the new stream's bytes were never
// delivered.
func TestReconnectReopensIn(t *testing.T) {
	rs := newReconnecting(t)
	s, evs := rs.s, rs.evs
	// stream connects s to a new listener whose peer sends msg and closes,
	// and returns what In delivered until it was closed.
	stream := func(msg string) string {
		t.Helper()
		c := rs.connect(t)
		in := s.In()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("peer Write() = %v", err)
		}
		c.Close()
		return string(testkit.RecvAll(t, in, "In on the stream of "+msg))
	}
	if got := stream("first"); got != "first" {
		t.Fatalf("the first stream read %q, want %q", got, "first")
	}
	waitEvent(t, evs, actor.EOF)
	if got := stream("second"); got != "second" {
		t.Fatalf("after the reconnect In read %q, want %q", got, "second")
	}
}

// Err says why the current stream ended: after a reconnect it is nil
// again while the new stream runs, and then the new stream's cause (here
// a reset), not the old stream's EOF.
func TestReconnectResetsErr(t *testing.T) {
	rs := newReconnecting(t)
	s, evs := rs.s, rs.evs
	connect := func() *net.TCPConn {
		t.Helper()
		c := rs.connect(t)
		if err := s.Enable(actor.Read); err != nil {
			t.Fatalf("Enable(Read) = %v", err)
		}
		return c
	}
	connect().Close()
	waitEvent(t, evs, actor.EOF)
	if err := s.Err(); err != io.EOF {
		t.Fatalf("Err() after the first stream = %v, want io.EOF", err)
	}
	c := connect()
	if err := s.Err(); err != nil {
		t.Fatalf("Err() on the new stream = %v, want nil", err)
	}
	c.SetLinger(0)
	c.Close()
	e := waitEvent(t, evs, actor.EOF|actor.Error)
	if !errors.Is(e.Err, syscall.ECONNRESET) {
		t.Fatalf("the new stream ended with %v %v, want a reset", e.Event, e.Err)
	}
	if err := s.Err(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Err() after the reset = %v, want ECONNRESET", err)
	}
}

// A connect that fails after a stream ended is what Err reports: the
// refusal, not the old stream's EOF.
func TestReconnectRefusedErr(t *testing.T) {
	rs := newReconnecting(t)
	c := rs.connect(t)
	if err := rs.s.Enable(actor.Read); err != nil {
		t.Fatalf("Enable(Read) = %v", err)
	}
	c.Close()
	waitEvent(t, rs.evs, actor.EOF)
	if err := rs.s.ConnectAddr(context.Background(), "tcp", refusedAddr(t)); err != nil {
		t.Fatalf("ConnectAddr() = %v", err)
	}
	if e := waitEvent(t, rs.evs, actor.Error); !isRefused(e.Err) {
		t.Fatalf("the connect failed with %v, want a refusal", e.Err)
	}
	if err := rs.s.Err(); !isRefused(err) {
		t.Fatalf("Err() after the refused connect = %v, want the refusal", err)
	}
}
