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

// A bucket made with WithClock refills as that clock moves, and its Wait
// sleeps on that clock: with an hour-long tick, the real clock would
// refill nothing during the test.
func TestBucketWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	cfg, err := limiter.NewConfig(100, 100, 100, 100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := limiter.NewBucket(cfg, limiter.WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	b.Consume(limiter.Read, 100)
	if got := b.Allow(limiter.Read); got != 0 {
		t.Fatalf("Allow after consuming the rate = %d, want 0", got)
	}
	done := waitDone(func() error { return b.Wait(context.Background(), limiter.Read) })
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
	if got := b.Allow(limiter.Read); got != 100 {
		t.Fatalf("Allow after a tick of the clock = %d, want 100", got)
	}
	if got := b.Allow(limiter.Write); got != 100 {
		t.Fatalf("Allow(Write), untouched = %d, want 100", got)
	}
}

// A group made with WithClock refills, and serves its waiting members, as
// that clock moves.
func TestGroupWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	cfg, err := limiter.NewConfig(100, 100, 100, 100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g, err := limiter.NewGroup(cfg, limiter.WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	m, err := g.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave()
	m.Consume(limiter.Write, int(m.Allow(limiter.Write)))
	if got := g.Limit(limiter.Write); got != 0 {
		t.Fatalf("group Limit after its member took the rate = %d, want 0", got)
	}
	done := waitDone(func() error { return m.Wait(context.Background(), limiter.Write) })
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
	if got := m.Allow(limiter.Write); got <= 0 {
		t.Fatalf("member's Allow after a tick of the clock = %d, want > 0", got)
	}
}

// A nil option and a nil clock mean the defaults.
func TestNilClockOption(t *testing.T) {
	cfg, err := limiter.NewConfig(100, 100, 100, 100, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]limiter.Option{{nil}, {limiter.WithClock(nil)}} {
		b, err := limiter.NewBucket(cfg, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.Allow(limiter.Read); got != 100 {
			t.Fatalf("Allow = %d, want 100", got)
		}
		g, err := limiter.NewGroup(cfg, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Limit(limiter.Read); got != 100 {
			t.Fatalf("group Limit = %d, want 100", got)
		}
		g.Close()
	}
}

// A member that waits for a second turn within a tick only yields to the
// goroutines ready to run: that wait is on the runtime's timer, not on the
// group's clock, so it ends although the injected clock never moves.
func TestGroupYieldWithClock(t *testing.T) {
	c := testbev.NewManualClock()
	cfg, err := limiter.NewConfig(3000, 12000, 3000, 12000, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g, err := limiter.NewGroup(cfg, limiter.WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var ms [3]*limiter.Member
	for i := range ms {
		if ms[i], err = g.Join(); err != nil {
			t.Fatal(err)
		}
		defer ms[i].Leave()
	}
	if got := ms[0].Allow(limiter.Read); got != 1000 {
		t.Fatalf("Allow of a first turn = %d, want 1000", got)
	}
	ms[0].Consume(limiter.Read, 1000)
	if got := ms[0].Allow(limiter.Read); got != 0 {
		t.Fatalf("Allow of a second turn = %d, want 0 (wait behind the others)", got)
	}
	done := waitDone(func() error { return ms[0].Wait(context.Background(), limiter.Read) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait for a second turn = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait for a second turn did not end within 5s with the clock standing still")
	}
	if got := ms[0].Allow(limiter.Read); got != 1000 {
		t.Fatalf("Allow after the yield = %d, want 1000", got)
	}
}
