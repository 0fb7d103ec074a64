package actor_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// Helpers that tests in several files share: a memory transport with the
// BufferWriter and BufferReader capabilities, a stream over a pair, a
// reader of a bufferevent's In channel, and the timeouts an events
// channel reports.

// xfer is one call a bufTransport saw: a WriteBuffer (with its wait
// flag), a Write, or a ReadBuffer (with its max).
type xfer struct {
	kind string // "buffer", "bytes" or "read"
	n    int    // bytes moved
	wait bool   // WriteBuffer's wait
	max  int    // ReadBuffer's max
}

// bufTransport is a Transport with the BufferWriter and BufferReader
// capabilities, over memory: what the bufferevent writes collects in got
// (every call recorded in calls), and what the test sends on in is what
// the bufferevent reads, then EOF once eof is closed.
type bufTransport struct {
	mu     sync.Mutex // guards following
	got    actor.Buffer
	calls  []xfer
	direct bool // take what is offered without wait
	lie    bool // report one byte more than was moved, both ways

	wrote   chan struct{} // buffered(1): got grew
	in      chan *actor.Buffer
	eof     chan struct{}
	pending actor.Buffer // the reader loop's: what came on in, not yet read
	closed  chan struct{}
	once    sync.Once
}

func newBufTransport(direct bool) *bufTransport {
	return &bufTransport{
		direct: direct,
		wrote:  make(chan struct{}, 1),
		in:     make(chan *actor.Buffer, 1),
		eof:    make(chan struct{}),
		closed: make(chan struct{}),
	}
}

func (t *bufTransport) record(x xfer) {
	t.calls = append(t.calls, x)
	testkit.Signal(t.wrote)
}

func (t *bufTransport) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.got.Write(p)
	t.record(xfer{kind: "bytes", n: len(p)})
	return len(p), nil
}

func (t *bufTransport) WriteBuffer(src *actor.Buffer, wait bool) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !wait && !t.direct {
		return 0, nil
	}
	n := src.Len()
	t.got.MoveFrom(src)
	t.record(xfer{kind: "buffer", n: n, wait: wait})
	if t.lie {
		n++
	}
	return int64(n), nil
}

func (t *bufTransport) ReadBuffer(dst *actor.Buffer, max int) (int, error) {
	if t.pending.Len() == 0 {
		select {
		case b := <-t.in:
			t.pending.MoveFrom(b)
		case <-t.eof:
			// in is buffered: what was sent before eof closed comes first.
			select {
			case b := <-t.in:
				t.pending.MoveFrom(b)
			default:
				return 0, io.EOF
			}
		case <-t.closed:
			return 0, io.ErrClosedPipe
		}
	}
	n, err := dst.MoveFromN(&t.pending, max)
	t.mu.Lock()
	t.calls = append(t.calls, xfer{kind: "read", n: n, max: max})
	lie := t.lie
	t.mu.Unlock()
	if lie {
		n++
	}
	return n, err
}

func (t *bufTransport) Read(p []byte) (int, error) {
	var b actor.Buffer
	n, err := t.ReadBuffer(&b, len(p))
	b.Read(p)
	return n, err
}

func (t *bufTransport) Close() error {
	t.once.Do(func() { close(t.closed) })
	return nil
}

// waitGot waits until the transport has taken n bytes and returns them
// with the calls that moved them.
func (t *bufTransport) waitGot(tb testing.TB, n int) ([]byte, []xfer) {
	tb.Helper()
	deadline := time.After(testkit.WaitTime)
	for {
		t.mu.Lock()
		if t.got.Len() >= n {
			p := testkit.DrainAll(tb, &t.got)
			calls := append([]xfer(nil), t.calls...)
			t.mu.Unlock()
			return p, calls
		}
		t.mu.Unlock()
		select {
		case <-t.wrote:
		case <-deadline:
			tb.Fatalf("timed out waiting for %d bytes written", n)
		}
	}
}

// window bounds the bytes in flight in the pair benchmark, as a kernel
// socket buffer would.
const window = 1 << 20

// pairStream moves chunks of size bytes from a to b: b's read callback
// drains and counts; the sender waits whenever more than window bytes are
// unread. It returns a function that sends one chunk and one that waits
// until everything sent has arrived.
func pairStream(tb testing.TB, size int, limit *limiter.Config) (send func(), wait func()) {
	a, b := testbev.NewPair(tb, 0)
	if limit != nil {
		a.SetRateLimit(limit)
		b.SetRateLimit(limit)
	}
	var received atomic.Int64
	space := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		n := s.Input().Len()
		s.Input().Drain(n)
		received.Add(int64(n))
		testkit.Signal(space)
	}})
	b.Enable(actor.Read)
	chunk := testkit.Pattern(size)
	var sent int64
	send = func() {
		for sent-received.Load() > window {
			<-space
		}
		a.Write(chunk)
		sent += int64(size)
	}
	wait = func() {
		for received.Load() < sent {
			<-space
		}
	}
	return send, wait
}

func timeouts(evs <-chan actor.EventInfo) []actor.Event {
	var got []actor.Event
	for {
		select {
		case e := <-evs:
			got = append(got, e.Event)
		default:
			return got
		}
	}
}

// goroutines returns the stack of every goroutine, one string each.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	return strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
}

// running counts the goroutines among gs that run package actor's method
// fn, such as "transportIO).readLoop".
func running(gs []string, fn string) int {
	n := 0
	for _, g := range gs {
		if strings.Contains(g, "actor.(*"+fn) {
			n++
		}
	}
	return n
}

// readerLoops counts the reader-loop goroutines of every bufferevent.
func readerLoops() int { return running(goroutines(), "transportIO).readLoop") }

// writerLoops counts the writer-loop goroutines of every bufferevent.
func writerLoops() int { return running(goroutines(), "transportIO).writeLoop") }

// chanReader reads a bufferevent's In channel as an io.Reader, for a
// test that reads a pair's end like a socket's peer. A read that waits longer
// than testkit.WaitTime fails.
type chanReader struct {
	in   <-chan []byte
	rest []byte
}

func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		select {
		case c, ok := <-r.in:
			if !ok {
				return 0, io.EOF
			}
			r.rest = c
		case <-time.After(testkit.WaitTime):
			return 0, fmt.Errorf("no input within %v", testkit.WaitTime)
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}
