package actor_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of loops.go: the goroutines a bufferevent runs, and the reader
// loop's allocations.

// A bufferevent runs exactly two goroutines (actor, reader) until its
// first write, three (and the writer loop) after it, and none after Close;
// a Base adds one dispatcher.
func TestGoroutinesPerBufferevent(t *testing.T) {
	count := func() map[string]int {
		gs := goroutines()
		m := map[string]int{}
		for _, fn := range []string{"actorState).run", "transportIO).readLoop", "transportIO).writeLoop", "Base).dispatch"} {
			if n := running(gs, fn); n > 0 {
				m[fn] = n
			}
		}
		return m
	}
	// A goroutine shows its function only once it has been scheduled;
	// give the new ones a bounded number of chances to start.
	settle := func(want map[string]int) map[string]int {
		got := count()
		for i := 0; i < 10000 && fmt.Sprint(got) != fmt.Sprint(want); i++ {
			runtime.Gosched()
			got = count()
		}
		return got
	}
	base := actor.NewBase()
	const pairs = 10
	var bevs []*actor.Bufferevent
	for range pairs {
		a, b, _ := actor.NewPair(base, 0)
		bevs = append(bevs, a, b)
	}
	want := map[string]int{"actorState).run": 2 * pairs, "transportIO).readLoop": 2 * pairs, "Base).dispatch": 1}
	got := settle(want)
	for fn, n := range want {
		if got[fn] != n {
			t.Errorf("before writing: %s goroutines = %d, want %d", fn, got[fn], n)
		}
	}
	if got["transportIO).writeLoop"] != 0 {
		t.Errorf("before writing: %d writer loops, want none", got["transportIO).writeLoop"])
	}
	// One byte each way over every pair starts every writer loop.
	for _, b := range bevs {
		b.Enable(actor.Read)
		b.Write([]byte{1})
	}
	for _, b := range bevs {
		select {
		case <-b.In():
		case <-time.After(10 * time.Second):
			t.Fatal("a byte did not cross its pair within 10 s")
		}
	}
	want["transportIO).writeLoop"] = 2 * pairs
	got = settle(want)
	for fn, n := range want {
		if fn != "Base).dispatch" && got[fn] != n {
			t.Errorf("after writing: %s goroutines = %d, want %d", fn, got[fn], n)
		}
	}
	if got["Base).dispatch"] != 1 {
		t.Errorf("dispatcher goroutines = %d, want 1", got["Base).dispatch"])
	}
	base.Close()
	for _, b := range bevs {
		select {
		case <-b.Done():
		default:
			t.Fatalf("Base.Close returned before a bufferevent stopped")
		}
	}
	// A bufferevent that stopped on its own closes Done as its goroutine's
	// last act, so the goroutine may be a moment from gone.
	got = count()
	for i := 0; i < 10000 && len(got) != 0; i++ {
		runtime.Gosched()
		got = count()
	}
	if len(got) != 0 {
		t.Errorf("goroutines left after Base.Close: %v", got)
	}
}

// Steady-state reading from a transport that is not a pair (a net.Conn,
// or a filter's view) allocates nothing per read: the reader loop's event
// must not escape to the heap.
func TestReadAllocs(t *testing.T) {
	if actor.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	c1, c2 := net.Pipe()
	defer c2.Close()
	b, err := actor.New(nil, c1, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	defer b.Close()
	got := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		s.Input().Drain(s.Input().Len())
		testkit.Signal(got)
	}})
	b.Enable(actor.Read)
	chunk := make([]byte, 16<<10)
	send := func() {
		if _, err := c2.Write(chunk); err != nil {
			t.Fatalf("Write = %v", err)
		}
		<-got
	}
	for range 200 { // warm the pools
		send()
	}
	if allocs := testing.AllocsPerRun(500, send); allocs > 0.05 {
		t.Errorf("reading allocates %.3f times per 16 KiB chunk, want 0", allocs)
	}
}

// zeroReader is a Transport whose Read returns nothing and no error, for
// ever (io.Reader allows it, once in a while), counting its reads.
type zeroReader struct{ reads atomic.Int64 }

func (r *zeroReader) Read([]byte) (int, error)    { r.reads.Add(1); return 0, nil }
func (r *zeroReader) Write(p []byte) (int, error) { return len(p), nil }
func (r *zeroReader) Close() error                { return nil }

// A transport whose Read returns (0, nil) for good ends the stream with
// io.ErrNoProgress after a bounded number of reads, instead of spinning
// the reader loop.
func TestReaderNoProgress(t *testing.T) {
	tr := &zeroReader{}
	b, err := actor.New(nil, tr, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	evs := make(chan actor.EventInfo, 4)
	b.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		evs <- actor.EventInfo{Event: ev, Err: err}
	}})
	b.Enable(actor.Read)
	e := testkit.Recv(t, evs, "the reader's end")
	if e.Event != actor.Reading|actor.Error || !errors.Is(e.Err, io.ErrNoProgress) {
		t.Fatalf("event %v, %v; want Reading|Error with io.ErrNoProgress", e.Event, e.Err)
	}
	if n := tr.reads.Load(); n > 1000 {
		t.Errorf("%d reads before giving up", n)
	}
}
