package conn_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// A rate-limit group over loopback TCP sockets, on the real clock:
// members that all want more than their share move the same amount, the
// group moves its rate, and its totals count exactly the bytes that
// arrived. The group limits the writing ends, or the reading ends.
//
// Refills happen at tick boundaries and their bytes arrive within
// milliseconds, so counts are taken in the middle of a tick, where
// nothing moves, and a window of whole ticks sees exactly its refills; an
// edge at which bytes are still on their way, or a member could still
// move some, moves on by a tick. This machine is shared and sometimes
// stalls the process for longer than a tick; a failure after a stall of
// half a tick or more skips the test rather than failing it, saying so.
// (limiter's synctest tests check the same fairness exactly, in virtual
// time.)
func TestGroupFairOverTCP(t *testing.T) {
	const (
		members = 8
		tick    = 100 * time.Millisecond
		rate    = 4000 // group bytes per tick: 500 a member
		ticks   = 20
	)
	for _, side := range []string{"writer", "reader"} {
		t.Run(side, func(t *testing.T) {
			cfg, err := limiter.NewConfig(rate, 4*rate, rate, 4*rate, tick)
			if err != nil {
				t.Fatal(err)
			}
			g, err := limiter.NewGroup(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Registered before testbev.NewBase, so it runs after the Base has
			// closed every member.
			t.Cleanup(func() {
				if err := g.Close(); err != nil {
					t.Errorf("Group.Close() after the members closed = %v", err)
				}
			})
			base := testbev.NewBase(t)
			counts := make([]*atomic.Int64, members)
			limited := make([]*conn.Socket, members)
			for i := range counts {
				counts[i], limited[i] = limitedStream(t, base, g, side == "reader")
			}
			// idle reports whether no member may move a byte in the
			// limited direction: the group holds no refill that someone
			// could spend.
			idle := func() bool {
				for _, s := range limited {
					if side == "reader" && s.MaxToRead() > 0 || side == "writer" && s.MaxToWrite() > 0 {
						return false
					}
				}
				return true
			}
			// The group's own total in the limited direction.
			moved := func() int64 {
				r, w := g.Totals()
				if side == "reader" {
					return r
				}
				return w
			}
			watch := startStallWatch(t, func() { g.Limit(limiter.Read) })

			// Warm up: the kernel buffers fill and the start-up bucket is
			// spent. Then count from the middle of one tick to the middle
			// of another, ticks later.
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			first, ok := settledEdge(timer, midTick(time.Now().Add(4*tick), tick), tick, counts, moved, idle)
			if !ok {
				unsettled(t, watch.worst(), tick)
			}
			watch.reset()
			last, ok := settledEdge(timer, first.due.Add(ticks*tick), tick, counts, moved, idle)
			if !ok {
				unsettled(t, watch.worst(), tick)
			}
			stalled := watch.worst()

			n := int64(last.due.Sub(first.due) / tick)
			var total int64
			got := make([]int64, members)
			for i := range got {
				got[i] = last.counts[i] - first.counts[i]
				total += got[i]
			}
			var problems []string
			fail := func(format string, args ...any) {
				problems = append(problems, fmt.Sprintf(format, args...))
			}
			if want := n * rate; total != want {
				fail("moved %d bytes in %d ticks of %d, want exactly %d", total, n, rate, want)
			}
			// Round-robin turns: every member's count is within one share
			// of every other's.
			share := int64(rate / members)
			lo, hi := got[0], got[0]
			for _, v := range got {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi-lo > share {
				fail("members moved %v bytes, a spread of %d, want at most one share (%d)", got, hi-lo, share)
			}
			if d := last.moved - first.moved; d != total {
				fail("group totals grew by %d in the window, want the %d bytes that arrived", d, total)
			}
			if len(problems) > 0 {
				msg := strings.Join(problems, "\n")
				if stalled >= tick/2 {
					t.Skipf("the process stalled for %v (a tick is %v) during the window, so these are not the limiter's:\n%s", stalled, tick, msg)
				}
				t.Fatalf("%s\n(worst stall %v)", msg, stalled)
			}
			t.Logf("%d ticks: %d bytes, members %v, worst stall %v", n, total, got, stalled)
		})
	}
}

// limitedStream connects two sockets over loopback TCP, puts one end in
// g (the reading end if reader is set, the writing end otherwise), keeps
// the writing end's output full and returns the count of bytes the
// reading end has received, and the end in g.
func limitedStream(t *testing.T, base *actor.Base, g *limiter.Group, reader bool) (*atomic.Int64, *conn.Socket) {
	t.Helper()
	c1, c2 := testconn.TCPConns(t)
	// A small send buffer: auto-tuned, the kernel would take megabytes,
	// a burst of copying that has nothing to do with the limit.
	if err := c1.SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	w, err := conn.New(base, c1, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	r, err := conn.New(base, c2, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	limited := w
	if reader {
		limited = r
	}
	if err := limited.JoinGroup(g); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	r.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		in := s.Input()
		n.Add(int64(in.Len()))
		in.Drain(in.Len())
	}})
	if err := r.Enable(actor.Read); err != nil {
		t.Fatal(err)
	}
	chunk := testkit.Pattern(1024)
	w.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		for s.Output().Len() < 8192 {
			if err := s.Write(chunk); err != nil {
				t.Errorf("Session.Write = %v", err)
				return
			}
		}
	}})
	if err := w.SetWatermark(actor.Write, 4096, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Trigger(actor.Write, 0); err != nil {
		t.Fatal(err)
	}
	return &n, limited
}

// edge is the state of the counters at one edge of a window.
type edge struct {
	due    time.Time
	counts []int64
	moved  int64 // the group's total in the limited direction
}

// settledEdge returns the counters at due, or a whole number of ticks
// later: the first time they are settled, every byte the group let
// through having arrived and idle reporting that no more can move before
// the next refill. It gives up after ten unsettled ticks.
func settledEdge(timer *time.Timer, due time.Time, tick time.Duration, counts []*atomic.Int64, moved func() int64, idle func() bool) (edge, bool) {
	for range 10 {
		timer.Reset(time.Until(due))
		<-timer.C
		e := edge{due: due, counts: make([]int64, len(counts)), moved: moved()}
		var sum int64
		for i, c := range counts {
			e.counts[i] = c.Load()
			sum += e.counts[i]
		}
		if sum == e.moved && idle() && moved() == e.moved {
			return e, true
		}
		due = due.Add(tick)
	}
	return edge{}, false
}

// unsettled ends a test whose counters never settled: skipped if the
// process stalled for half a tick or more meanwhile, failed otherwise.
func unsettled(t *testing.T, stalled, tick time.Duration) {
	t.Helper()
	if stalled >= tick/2 {
		t.Skipf("bytes were still on their way in the middle of ten ticks in a row, and the process stalled for %v", stalled)
	}
	t.Fatalf("bytes were still on their way in the middle of ten ticks in a row (worst stall %v)", stalled)
}

// midTick returns the middle of the first tick that starts after t. Ticks
// start at multiples of tick in Unix time, as the limiter counts them.
func midTick(t time.Time, tick time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, ns-ns%int64(tick)).Add(tick + tick/2)
}

// stallWatch records how late the process wakes from 5 ms sleeps and
// runs probe: how much the machine starves it. The probe takes the
// group's lock, so a thread preempted while holding it shows as a stall.
type stallWatch struct {
	late atomic.Int64 // worst, in nanoseconds
	quit chan struct{}
	done chan struct{}
}

// startStallWatch starts a watch that the test's cleanup stops.
func startStallWatch(t *testing.T, probe func()) *stallWatch {
	s := &stallWatch{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		const period = 5 * time.Millisecond
		timer := time.NewTimer(period)
		defer timer.Stop()
		last := time.Now()
		for {
			select {
			case <-timer.C:
			case <-s.quit:
				return
			}
			probe()
			now := time.Now()
			late := int64(now.Sub(last) - period)
			for old := s.late.Load(); late > old && !s.late.CompareAndSwap(old, late); old = s.late.Load() {
			}
			last = now
			timer.Reset(period)
		}
	}()
	t.Cleanup(func() {
		close(s.quit)
		<-s.done
	})
	return s
}

func (s *stallWatch) reset()               { s.late.Store(0) }
func (s *stallWatch) worst() time.Duration { return time.Duration(s.late.Load()) }
