// Package testbev holds the helpers bev's tests share that need package
// actor. Package actor's own internal tests (package actor, not
// actor_test) cannot import it, since it imports actor; what they may
// share lives in internal/testkit, which imports no bev package.
package testbev

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// NewBase returns a new Base that is closed, joining everything it owns,
// when the test ends. A Close that returns an error then fails the test
// (with t.Errorf); closing the Base earlier is fine, and the later Close
// returns the same result.
func NewBase(t testing.TB) *actor.Base {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() {
		if err := base.Close(); err != nil {
			t.Errorf("Base.Close() = %v, want nil", err)
		}
	})
	return base
}

// NewPair returns the two ends of a pair made with opts, owned by a Base
// closed when the test ends (see NewBase). A failure to make the pair
// fails the test with t.Fatalf.
func NewPair(t testing.TB, opts actor.Option) (a, b *actor.Bufferevent) {
	t.Helper()
	a, b, err := actor.NewPair(NewBase(t), opts)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	return a, b
}

// Echo makes b an echo server's end: its callbacks send every byte it
// reads back out; an error closes it, and after the peer's EOF it closes
// once everything read has been written back, so the peer sees its whole
// echo and then EOF. events, unless nil, is called first with every event
// (on b's callback goroutine, so it must not block). Echo enables reading
// and writing and returns Enable's error.
func Echo(b *actor.Bufferevent, events func(ev actor.Event, err error)) error {
	closing := false // touched only by b's callbacks, which run one at a time
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
		Write: func(s *actor.Session) {
			if closing && s.Output().Len() == 0 {
				s.Close()
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if events != nil {
				events(ev, err)
			}
			switch {
			case ev&actor.Error != 0 || ev&actor.EOF != 0 && s.Output().Len() == 0:
				s.Close()
			case ev&actor.EOF != 0:
				closing = true
			}
		},
	})
	return b.Enable(actor.Read | actor.Write)
}

// NewBaseClock is NewBase with clock as the Base's clock.
func NewBaseClock(t testing.TB, clock actor.Clock) *actor.Base {
	t.Helper()
	base, err := actor.NewBaseConfig(actor.BaseConfig{Clock: clock})
	if err != nil {
		t.Fatalf("NewBaseConfig() = %v", err)
	}
	t.Cleanup(func() {
		if err := base.Close(); err != nil {
			t.Errorf("Base.Close() = %v, want nil", err)
		}
	})
	return base
}

// ManualClock is an actor.Clock whose time moves only when the test calls
// Advance, which runs the timers that have come due (on Advance's
// goroutine: a bufferevent's timer only posts to its mailbox). Armed
// receives a value each time a timer is armed (made or Reset), so that a
// test can wait until the code under test has armed one; arms beyond its
// buffer are not signalled.
type ManualClock struct {
	Armed chan struct{}

	mu     sync.Mutex // guards what follows
	now    time.Time
	timers []*manualTimer
}

// NewManualClock returns a ManualClock at an arbitrary fixed time.
func NewManualClock() *ManualClock {
	return &ManualClock{Armed: make(chan struct{}, 64), now: time.Unix(1_000_000_000, 0)}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that runs f once Advance has moved the clock d on.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) actor.Timer {
	t := &manualTimer{c: c, f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the clock d on and runs every timer that came due, in the
// order of their times.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	for _, t := range c.timers {
		if t.armed && !t.when.After(c.now) {
			t.armed = false
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *manualTimer) int { return a.when.Compare(b.when) })
	for _, t := range due {
		t.f()
	}
}

// Pending returns the number of timers armed and not yet run or stopped.
func (c *ManualClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.armed {
			n++
		}
	}
	return n
}

type manualTimer struct {
	c     *ManualClock
	f     func()
	when  time.Time // guarded by c.mu
	armed bool      // guarded by c.mu
}

// Reset arms the timer to run d after the clock's time now.
func (t *manualTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.when, t.armed = t.c.now.Add(d), true
	t.c.mu.Unlock()
	select {
	case t.c.Armed <- struct{}{}:
	default:
	}
}

// Stop disarms the timer.
func (t *manualTimer) Stop() {
	t.c.mu.Lock()
	t.armed = false
	t.c.mu.Unlock()
}

// WaitArmed waits until the code under test has armed a timer on c (see
// ManualClock.Armed), and fails the test if none is armed within 5 s.
func WaitArmed(t testing.TB, c *ManualClock) {
	t.Helper()
	select {
	case <-c.Armed:
	case <-time.After(5 * time.Second):
		t.Fatal("no timer armed on the clock within 5s")
	}
}
