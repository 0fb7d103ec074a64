package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/limiter"
)

// waitDone runs w on a goroutine of its own and returns a channel that
// receives its result.
func waitDone(w func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w() }()
	return done
}

// waitsForTick runs wait, which must sleep on c: it checks that wait has
// not returned once it armed its timer, then moves c on by the tests'
// tick (an hour) and checks that wait returns nil.
func waitsForTick(t *testing.T, c *testbev.ManualClock, wait func() error) {
	t.Helper()
	done := waitDone(wait)
	testbev.WaitArmed(t, c)
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before the clock moved", err)
	default:
	}
	c.Advance(time.Hour)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return within 5s of the clock reaching the next tick")
	}
}

// A bucket made with WithClock refills as that clock moves, and its Wait
// sleeps on that clock: with an hour-long tick, the real clock would
// refill nothing during the test.
func TestBucketWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	b := mustBucket(t, mustConfig(t, 100, 100, 100, 100, time.Hour), limiter.WithClock(c))
	b.Consume(limiter.Read, 100)
	checkLimit(t, "Allow after consuming the rate", b.Allow(limiter.Read), 0)
	waitsForTick(t, c, func() error { return b.Wait(context.Background(), limiter.Read) })
	checkLimit(t, "Allow after a tick of the clock", b.Allow(limiter.Read), 100)
	checkLimit(t, "Allow(Write), untouched", b.Allow(limiter.Write), 100)
}

// A group made with WithClock refills, and serves its waiting members, as
// that clock moves.
func TestGroupWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	g := mustGroup(t, mustConfig(t, 100, 100, 100, 100, time.Hour), limiter.WithClock(c))
	m := join(t, g, 1)[0]
	m.Consume(limiter.Write, int(m.Allow(limiter.Write)))
	checkLimit(t, "group Limit after its member took the rate", g.Limit(limiter.Write), 0)
	waitsForTick(t, c, func() error { return m.Wait(context.Background(), limiter.Write) })
	if got := m.Allow(limiter.Write); got <= 0 {
		t.Fatalf("member's Allow after a tick of the clock = %d, want > 0", got)
	}
}

// A member that waits for a second turn within a tick only yields to the
// goroutines ready to run: that wait is on the runtime's timer, not on the
// group's clock, so it ends although the injected clock never moves.
func TestGroupYieldWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, time.Hour), limiter.WithClock(c))
	ms := join(t, g, 3)
	checkLimit(t, "Allow of a first turn", ms[0].Allow(limiter.Read), 1000)
	ms[0].Consume(limiter.Read, 1000)
	checkLimit(t, "Allow of a second turn (wait behind the others)", ms[0].Allow(limiter.Read), 0)
	done := waitDone(func() error { return ms[0].Wait(context.Background(), limiter.Read) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait for a second turn = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait for a second turn did not end within 5s with the clock standing still")
	}
	checkLimit(t, "Allow after the yield", ms[0].Allow(limiter.Read), 1000)
}

// A nil option and a nil clock mean the defaults.
func TestNilClockOption(t *testing.T) {
	cfg := mustConfig(t, 100, 100, 100, 100, time.Hour)
	for _, opts := range [][]limiter.Option{{nil}, {limiter.WithClock(nil)}} {
		checkLimit(t, "Allow", mustBucket(t, cfg, opts...).Allow(limiter.Read), 100)
		g := mustGroup(t, cfg, opts...)
		checkLimit(t, "group Limit", g.Limit(limiter.Read), 100)
		g.Close()
	}
}
