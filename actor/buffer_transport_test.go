package actor_test

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

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

func TestBufferWriter(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := "loop"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			tr := newBufTransport(direct)
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// Pieces of many sizes, so that chunks of every pool class
			// and a chunk bigger than the per-write maximum go over.
			var want []byte
			for i, size := range []int{1, 700, 5000, 16 << 10, 100 << 10, 3, 20000} {
				p := bytes.Repeat([]byte{byte('a' + i)}, size)
				want = append(want, p...)
				if err := b.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			got, calls := tr.waitGot(t, len(want))
			if !bytes.Equal(got, want) {
				t.Fatalf("the transport got %d bytes that differ from the %d written", len(got), len(want))
			}
			sawDirect, sawBuffer := false, false
			for _, c := range calls {
				if c.kind == "buffer" {
					sawBuffer = true
					if !c.wait {
						sawDirect = true
					}
				}
				if c.n > b.MaxWrite() {
					t.Errorf("a %s write of %d bytes, over the per-write maximum %d", c.kind, c.n, b.MaxWrite())
				}
			}
			if !sawBuffer {
				t.Errorf("no WriteBuffer call among %v, want chunks handed over", calls)
			}
			if sawDirect != direct {
				t.Errorf("a WriteBuffer without wait taken = %v, want %v", sawDirect, direct)
			}
		})
	}
}

// Under a write rate limit the chunks handed over never exceed the
// allowance, and the actor never offers them without waiting.
func TestBufferWriterRateLimit(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const burst = 4 << 10
	cfg, err := limiter.NewConfig(1<<20, 1<<20, burst, burst, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetRateLimit(cfg); err != nil {
		t.Fatal(err)
	}
	// 128 small chunks (each Write is its own 512-byte chunk) and one
	// that is larger than the burst, which must be cut to size: its head
	// goes over as a chunk of its own, never as a byte write.
	var want []byte
	for i := range 128 {
		p := bytes.Repeat([]byte{byte(i)}, 500)
		want = append(want, p...)
		b.Write(p)
	}
	big := testkit.Pattern(10000)
	want = append(want, big...)
	b.Write(big)
	got, calls := tr.waitGot(t, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the transport got %d bytes that differ from the %d written", len(got), len(want))
	}
	kinds := map[string]bool{}
	for _, c := range calls {
		kinds[c.kind] = true
		if c.n > burst {
			t.Errorf("a %s write of %d bytes, over the write burst %d", c.kind, c.n, burst)
		}
		if c.kind == "buffer" && !c.wait {
			t.Errorf("a WriteBuffer without wait under a rate limit")
		}
	}
	if !kinds["buffer"] || kinds["bytes"] {
		t.Errorf("calls of kinds %v, want chunk hand-overs only (one way out)", kinds)
	}
}

// A read that brings more chunks than one hand-off to the actor carries
// arrives whole and in order, every read within its maximum, and EOF
// comes after the last byte.
func TestBufferReader(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var (
		mu  sync.Mutex
		got []byte
	)
	eof := make(chan []byte, 1)
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			mu.Lock()
			got = append(got, testkit.DrainAll(t, s.Input())...)
			mu.Unlock()
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.EOF != 0 {
				mu.Lock()
				eof <- append([]byte(nil), got...)
				mu.Unlock()
			}
		},
	})
	b.SetMaxRead(20000)
	b.Enable(actor.Read)
	var want []byte
	for round := range 3 {
		var src actor.Buffer
		for i := range 100 { // 100 chunks of 100 bytes: more than one hand-off
			p := bytes.Repeat([]byte{byte(round*100 + i)}, 100)
			want = append(want, p...)
			src.AppendOwned(p)
		}
		big := testkit.Pattern(50000) // over the maximum: split by MoveFromN
		want = append(want, big...)
		src.Write(big)
		tr.in <- &src
	}
	close(tr.eof)
	if got := testkit.Recv(t, eof, "EOF"); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes before EOF that differ from the %d sent", len(got), len(want))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.calls {
		if c.kind == "read" && (c.n > c.max || c.max > 20000) {
			t.Errorf("a read of %d bytes with max %d, per-read maximum 20000", c.n, c.max)
		}
	}
}

// A transport whose counts do not match what it moved fails the
// bufferevent with ErrInvalid instead of losing or inventing bytes.
func TestBufferTransportBadCount(t *testing.T) {
	for _, dir := range []string{"write", "read"} {
		t.Run(dir, func(t *testing.T) {
			tr := newBufTransport(true)
			tr.lie = true
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			events := make(chan error, 4)
			b.SetCallbacks(actor.Callbacks{Event: func(s *actor.Session, ev actor.Event, err error) {
				if ev&actor.Error != 0 {
					events <- err
				}
			}})
			if dir == "write" {
				b.Write([]byte("hello"))
			} else {
				b.Enable(actor.Read)
				var src actor.Buffer
				src.WriteString("hello")
				tr.in <- &src
			}
			if err := testkit.Recv(t, events, "an Error event"); !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("Error event with %v, want ErrInvalid", err)
			}
		})
	}
}

// A staged bufferevent's write callback that refills the output every
// time the stage drains it is cut off after 16 rounds in one turn, so the
// actor gets back to its mail. Over a transport that takes every write at
// once no write completion comes to resume it: the actor must give itself
// the next turn, or the last refill would wait for the stage forever.
func TestStagedWriteCallbackRefillsPastBound(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.NewStaged(testbev.NewBase(t), tr, actor.CloseOnFree, nil, &moveStage{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const rounds, size = 100, 1000
	var want []byte
	for i := range rounds {
		want = append(want, bytes.Repeat([]byte{byte(i)}, size)...)
	}
	sent := 0 // touched only by the write callback
	b.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		if sent < rounds {
			s.Output().Write(want[sent*size : (sent+1)*size])
			sent++
		}
	}})
	if err := b.Trigger(actor.Write, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := tr.waitGot(t, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the transport got %d bytes that differ from the %d the callback wrote", len(got), len(want))
	}
}
