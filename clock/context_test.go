package clock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/clock"
)

// stepClock is a Clock that moves only when step is called, which runs
// the timers that came due on the caller's goroutine.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*stepTimer
}

type stepTimer struct {
	c     *stepClock
	f     func()
	when  time.Time
	armed bool
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &stepTimer{c: c, f: f}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (c *stepClock) step(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*stepTimer
	for _, t := range c.timers {
		if t.armed && !t.when.After(c.now) {
			t.armed = false
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func (t *stepTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.when, t.armed = t.c.now.Add(d), true
	t.c.mu.Unlock()
}

func (t *stepTimer) Stop() {
	t.c.mu.Lock()
	t.armed = false
	t.c.mu.Unlock()
}

// A context carries a clock; one that carries none gives the real clock.
func TestContextClock(t *testing.T) {
	if _, ok := clock.FromContext(context.Background()).(*stepClock); ok {
		t.Fatal("FromContext(Background) is not the real clock")
	}
	c := &stepClock{now: time.Unix(1000, 0)}
	ctx := clock.NewContext(context.Background(), c)
	if got := clock.FromContext(ctx); got != c {
		t.Fatalf("FromContext = %v, want the clock NewContext put in", got)
	}
	if got := clock.FromContext(clock.NewContext(ctx, nil)); got == c || got == nil {
		t.Fatalf("FromContext after NewContext(nil) = %v, want the real clock", got)
	}
}

// WithTimeoutCause on a context carrying a clock ends, with the cause,
// exactly when that clock has moved d on, and not before; cancel ends it
// with context.Canceled and stops the timer.
func TestWithTimeoutCauseFollowsClock(t *testing.T) {
	c := &stepClock{now: time.Unix(1000, 0)}
	parent := clock.NewContext(context.Background(), c)
	cause := errors.New("too slow")
	ctx, cancel := clock.WithTimeoutCause(parent, time.Hour, cause)
	defer cancel()
	c.step(time.Hour - time.Nanosecond)
	if ctx.Err() != nil {
		t.Fatalf("ended %v before the clock moved the timeout on", ctx.Err())
	}
	c.step(time.Nanosecond)
	if ctx.Err() == nil || context.Cause(ctx) != cause {
		t.Fatalf("after the timeout: Err() = %v, Cause() = %v, want the cause %v", ctx.Err(), context.Cause(ctx), cause)
	}
	if clock.FromContext(ctx) != c {
		t.Error("the derived context lost the clock")
	}

	ctx, cancel = clock.WithTimeoutCause(parent, time.Hour, cause)
	cancel()
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Errorf("after cancel: Cause() = %v, want context.Canceled", context.Cause(ctx))
	}
	c.mu.Lock()
	for _, tm := range c.timers {
		if tm.armed {
			t.Error("cancel left the timer armed")
		}
	}
	c.mu.Unlock()
}

// On the real clock it is context.WithTimeoutCause: a deadline, and
// DeadlineExceeded with the cause once it passes.
func TestWithTimeoutCauseReal(t *testing.T) {
	cause := errors.New("too slow")
	ctx, cancel := clock.WithTimeoutCause(context.Background(), time.Millisecond, cause)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("no deadline on the real clock")
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not done within 5s of a 1ms timeout")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || context.Cause(ctx) != cause {
		t.Errorf("Err() = %v, Cause() = %v, want DeadlineExceeded and the cause", ctx.Err(), context.Cause(ctx))
	}
}
