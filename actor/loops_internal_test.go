package actor

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Internal tests of loops.go: the reader loop's hand-offs, and
// transportIO's size.

// socketIO returns a loopback TCP connection and the transportIO of its
// server end, with no read limit and no rate; the test's end stops it.
func socketIO(t *testing.T) (client, server net.Conn, l *transportIO) {
	t.Helper()
	client, server = testconn.Pair(t, "tcp")
	if s := socketOf(server); s == nil {
		t.Skip("no socket side door on this platform")
	}
	var maxRead atomic.Int64
	maxRead.Store(DefaultMaxRead)
	var rate atomic.Pointer[rateState]
	l = newTransportIO(server, &maxRead, nil, &rate, new(atomic.Int64), func() {})
	t.Cleanup(func() { l.stop(true) })
	l.setLimit(noLimit)
	return client, server, l
}

// The reader loop gathers several reads of a socket per hand-off only
// while they are small: one hand-off carries at most one maximal read's
// worth, so a busy connection's reader holds no more than the actor's
// own read would.
func TestReaderLoopHandOffBounded(t *testing.T) {
	client, _, l := socketIO(t)
	l.startReader()

	const burst = 16 << 20
	werr := make(chan error, 1)
	go func() { _, err := client.Write(make([]byte, burst)); werr <- err }()
	deadline := time.After(20 * time.Second)
	largest := 0
	for got := 0; got < burst; {
		select {
		case ev := <-l.events:
			if ev.err != nil {
				t.Fatalf("read after %d bytes: %v", got, ev.err)
			}
			n := int(ev.n)
			if ev.in == nil || ev.in.Len() != n {
				t.Fatalf("a hand-off of %d bytes carried a Buffer of %v", n, ev.in)
			}
			ev.release()
			l.delivered(n)
			largest = max(largest, n)
			got += n
		case <-deadline:
			t.Fatalf("only %d of %d bytes read in time", got, burst)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if largest > maxReadChunk {
		t.Errorf("one hand-off carried %d bytes, more than one %d-byte read", largest, maxReadChunk)
	}
}

// Every connection holds its loops for its whole life, idle or not; the
// allocator rounds them up to the 320-byte size class, and the next is
// 352 (docs/benchmarks.md, idle memory). The sizer is kept to four bytes
// for that.
func TestLoopsSize(t *testing.T) {
	if n := unsafe.Sizeof(transportIO{}); n > 320 {
		t.Errorf("transportIO is %d bytes, over the 320-byte allocation class", n)
	}
}

// socketBufferevent returns a bufferevent over the server end of a
// loopback TCP pair (closed when the test ends) and the client end; it
// skips the test where sockets have no side door.
func socketBufferevent(t *testing.T) (*Bufferevent, net.Conn) {
	t.Helper()
	c, s := testconn.Pair(t, "tcp")
	if socketOf(s) == nil {
		t.Skip("no socket side door on this platform")
	}
	b, err := New(nil, s, CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, c
}

// A socket's transportIO makes the channels to its loops (quit,
// moreCredit, events) only when its first loop starts: an actor that
// reads and writes its socket itself, as most do, makes none, and its
// sends to moreCredit and its stop do without them. The reader started
// later gets them and hands its reads over.
func TestLoopChansMadeWithFirstLoop(t *testing.T) {
	client, _, l := socketIO(t)
	if l.quit != nil || l.moreCredit != nil || l.events != nil {
		t.Fatalf("loop channels made before any loop started: quit %v, moreCredit %v, events %v", l.quit, l.moreCredit, l.events)
	}
	l.setLimit(noLimit - 1)
	l.setLimit(noLimit) // grew: a send to moreCredit, which must not wait
	l.delivered(0)

	l.startReader()
	if l.quit == nil || l.moreCredit == nil || l.events == nil {
		t.Fatal("the reader started without its channels")
	}
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-l.events:
		if ev.err != nil || ev.n != 5 {
			t.Fatalf("the reader handed over %d bytes, error %v; want 5, nil", ev.n, ev.err)
		}
		ev.release()
		l.delivered(5)
	case <-time.After(testkit.WaitTime):
		t.Fatal("the reader handed nothing over")
	}

	// A transportIO whose loops never ran stops without them: it closes
	// the transport and returns.
	_, s2 := testconn.Pair(t, "tcp")
	var maxRead atomic.Int64
	maxRead.Store(DefaultMaxRead)
	var rate atomic.Pointer[rateState]
	l2 := newTransportIO(s2, &maxRead, nil, &rate, new(atomic.Int64), func() {})
	if err := l2.stop(true); err != nil {
		t.Fatalf("stop with no loops: %v", err)
	}
	if _, err := s2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after stop: %v, want net.ErrClosed", err)
	}
}
