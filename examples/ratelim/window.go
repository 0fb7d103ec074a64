package main

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/limiter"
)

// maxSkips is how many disturbed edges in a row a run passes over before
// it takes one anyway.
const maxSkips = 10

// A windower takes the measurement window's edges: snapshots of every
// counter in the middle of a tick.
//
// Buckets refill at tick boundaries, and on an idle machine the bytes a
// refill lets through have all arrived a few milliseconds after it. So in
// the middle of a tick nothing moves, and a window from the middle of one
// tick to the middle of another counts exactly the refills between them,
// however late the snapshots within half a tick. On a loaded machine
// (these are shared) a stall can delay a snapshot or the bytes of a
// refill by half a tick, which moves one refill in or out of the window:
// a 5 % error in a 2 s window of 100 ms ticks. Such an edge is caught by
// looking twice, in the middle and three quarters of the way through the
// tick: it counts only if both snapshots were taken before the next
// boundary, saw the same counts, saw every byte the server had echoed
// (and, with a group, every byte the group let the server read and write)
// back at the clients, and found no refill banked: no connection that
// its buckets and its group would let move a byte. (A stall before an
// edge banks refills, which the connections spend after it: counted in
// the wrong window.) Otherwise the edge moves on by one tick, which
// keeps the window a whole number of ticks long. After maxSkips disturbed
// edges in a row the next one is taken as it is and marked disturbed, so
// that a run on a starved machine still reports, and its checks say
// whether the figures held.
type windower struct {
	clients []*client
	echoed  *atomic.Int64  // bytes the echo server has moved to its output
	servers []*conn.Socket // the echo server's ends
	group   *limiter.Group // nil without a group
	timer   *time.Timer    // stopped or fired
	failed  <-chan error
	tick    time.Duration
	// settle is false when nothing is limited: bytes then move all the
	// time, there is no quiet moment to wait for, and an edge is one
	// snapshot.
	settle bool
}

// edge is the state of the counters at one edge of the window.
type edge struct {
	due, at                 time.Time // when it was due and taken
	received                []int64
	groupRead, groupWritten int64
	skipped                 int  // disturbed edges passed over for this one
	inFlight                bool // bytes were on their way back to the clients
	banked                  bool // a connection could have moved bytes
	disturbed               bool // taken although not settled
}

// edge returns the first settled edge due at due or a whole number of
// ticks after it, or the one after maxSkips disturbed edges, marked. It
// fails only when a connection fails.
func (w *windower) edge(due time.Time) (edge, error) {
	for skipped := 0; ; skipped++ {
		if err := sleepUntil(w.timer, due, w.failed); err != nil {
			return edge{}, err
		}
		e := w.snapshot(due)
		e.skipped = skipped
		if !w.settle {
			return e, nil
		}
		if err := sleepUntil(w.timer, due.Add(w.tick/4), w.failed); err != nil {
			return edge{}, err
		}
		again := w.snapshot(due)
		settled := again.at.Sub(due) < w.tick/2 &&
			!e.inFlight && !again.inFlight && !e.banked && !again.banked &&
			slices.Equal(e.received, again.received)
		if settled || skipped == maxSkips {
			e.disturbed = !settled
			return e, nil
		}
		due = due.Add(w.tick)
	}
}

// snapshot reads the counters. A byte is counted as echoed before it is
// sent, and received after, so the clients have received everything the
// server echoed when the sum of what they received equals what it echoed
// both before and after the sum was taken. The group's totals, which
// count every byte the server reads and writes, must agree too.
func (w *windower) snapshot(due time.Time) edge {
	e := edge{due: due, received: make([]int64, len(w.clients))}
	before := w.echoed.Load()
	if w.group != nil {
		e.groupRead, e.groupWritten = w.group.Totals()
	}
	var sum int64
	for i, c := range w.clients {
		e.received[i] = c.received.Load()
		sum += e.received[i]
	}
	e.at = time.Now()
	after := w.echoed.Load()
	e.inFlight = sum != before || after != before
	if w.group != nil {
		e.inFlight = e.inFlight || e.groupRead != before || e.groupWritten != before
	}
	for _, s := range w.servers {
		if s.MaxToRead() > 0 || s.MaxToWrite() > 0 {
			e.banked = true
		}
	}
	return e
}

// sleepUntil waits on timer until t, or returns the first failure. The
// timer must be stopped or fired.
func sleepUntil(timer *time.Timer, t time.Time, failed <-chan error) error {
	timer.Reset(time.Until(t))
	select {
	case <-timer.C:
		return nil
	case err := <-failed:
		return err
	}
}

// wholeTicks returns d rounded up to a whole number of ticks.
func wholeTicks(d, tick time.Duration) time.Duration {
	return (d + tick - 1) / tick * tick
}

// stallPeriod is how often a stallWatch wakes.
const stallPeriod = 5 * time.Millisecond

// A stallWatch measures how much the machine starves the process: it
// sleeps stallPeriod at a time, calls its probe, and records the worst
// lateness of a wake-up, the probe included. The probe takes the group's
// lock: a thread that the machine preempts while holding it stalls every
// member, and the watch then sees that stall too. The edges of the window look after themselves; a stall inside
// the window does not move a refill in or out of it, but a stall of half
// a tick or more lets turns lapse and reorders who asks first, which can
// make the shares unequal, so such a window is reported as disturbed.
type stallWatch struct {
	probe func()       // may be nil
	worst atomic.Int64 // nanoseconds
	quit  chan struct{}
	done  chan struct{} // closed when loop has returned
}

func startStallWatch(probe func()) *stallWatch {
	s := &stallWatch{probe: probe, quit: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *stallWatch) loop() {
	defer close(s.done)
	timer := time.NewTimer(stallPeriod)
	defer timer.Stop()
	last := time.Now()
	for {
		select {
		case <-timer.C:
		case <-s.quit:
			return
		}
		if s.probe != nil {
			s.probe()
		}
		now := time.Now()
		late := int64(now.Sub(last) - stallPeriod)
		for old := s.worst.Load(); late > old && !s.worst.CompareAndSwap(old, late); old = s.worst.Load() {
		}
		last = now
		timer.Reset(stallPeriod)
	}
}

// reset forgets the stalls seen so far.
func (s *stallWatch) reset() { s.worst.Store(0) }

// stalled returns the worst stall since the last reset.
func (s *stallWatch) stalled() time.Duration { return time.Duration(s.worst.Load()) }

// stop ends the loop and waits for it. A nil stallWatch does nothing.
func (s *stallWatch) stop() {
	if s == nil {
		return
	}
	close(s.quit)
	<-s.done
}
