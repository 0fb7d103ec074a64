package clock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bevgo/bev/clock"
	"github.com/bevgo/bev/internal/testbev"
)

// A context carries a clock; one that carries none gives the real clock.
func TestContextClock(t *testing.T) {
	if _, ok := clock.FromContext(context.Background()).(*testbev.ManualClock); ok {
		t.Fatal("FromContext(Background) is not the real clock")
	}
	c := testbev.NewManualClock()
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
	c := testbev.NewManualClock()
	parent := clock.NewContext(context.Background(), c)
	cause := errors.New("too slow")
	ctx, cancel := clock.WithTimeoutCause(parent, time.Hour, cause)
	defer cancel()
	c.Advance(time.Hour - time.Nanosecond)
	if ctx.Err() != nil {
		t.Fatalf("ended %v before the clock moved the timeout on", ctx.Err())
	}
	c.Advance(time.Nanosecond)
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
	if n := c.Pending(); n != 0 {
		t.Errorf("cancel left %d timers armed", n)
	}
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

// The real clock given to a context that carries none leaves the context
// as it is: a bufferevent on the real clock, which hands its clock to
// every dial, pays no allocation for it.
func TestNewContextRealAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	if got := clock.NewContext(ctx, clock.Real()); got != ctx {
		t.Errorf("NewContext(Background, Real) = %v, want Background itself", got)
	}
	if n := testing.AllocsPerRun(100, func() { clock.NewContext(ctx, nil) }); n != 0 {
		t.Errorf("NewContext(Background, nil) allocates %v times, want 0", n)
	}
}
