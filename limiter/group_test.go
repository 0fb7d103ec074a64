package limiter_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/limiter"
)

func mustGroup(t testing.TB, cfg *limiter.Config, opts ...limiter.Option) *limiter.Group {
	t.Helper()
	g, err := limiter.NewGroup(cfg, opts...)
	if err != nil {
		t.Fatalf("NewGroup(%+v) = %v", cfg, err)
	}
	return g
}

// join adds n members and makes them leave, and the group close, at the
// end of the test.
func join(t testing.TB, g *limiter.Group, n int) []*limiter.Member {
	t.Helper()
	ms := make([]*limiter.Member, n)
	for i := range ms {
		m, err := g.Join()
		if err != nil {
			t.Fatalf("Join() = %v", err)
		}
		ms[i] = m
	}
	t.Cleanup(func() {
		for _, m := range ms {
			m.Leave()
		}
		if g.Members() > 0 {
			return // another join's cleanup closes the group
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close() after every member left = %v", err)
		}
	})
	return ms
}

// startWait runs m.Wait in a goroutine and returns the channel its result
// arrives on, once the goroutine is blocked or done.
func startWait(ctx context.Context, m limiter.Meter, d limiter.Dir) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.Wait(ctx, d) }()
	synctest.Wait()
	return done
}

func checkPending(t testing.TB, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s: Wait returned %v, want still blocked", what, err)
	default:
	}
}

func TestNewGroupInvalid(t *testing.T) {
	for _, cfg := range []*limiter.Config{nil, {}, {ReadRate: 2, ReadBurst: 1, WriteRate: 1, WriteBurst: 1}} {
		if _, err := limiter.NewGroup(cfg); !errors.Is(err, limiter.ErrInvalidConfig) {
			t.Errorf("NewGroup(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

func TestGroupRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(tick / 2)
		g := mustGroup(t, mustConfig(t, 3000, 12000, 1000, 1500, tick))
		checkLimit(t, "Limit(Read) at start", g.Limit(limiter.Read), 3000)
		checkLimit(t, "Limit(Write) at start", g.Limit(limiter.Write), 1000)
		time.Sleep(tick/2 - time.Millisecond)
		checkLimit(t, "Limit(Read) before the boundary", g.Limit(limiter.Read), 3000)
		time.Sleep(time.Millisecond)
		wantRead := []int64{6000, 9000, 12000, 12000}
		wantWrite := []int64{1500, 1500, 1500, 1500}
		for i := range wantRead {
			checkLimit(t, "Limit(Read) after tick", g.Limit(limiter.Read), wantRead[i])
			checkLimit(t, "Limit(Write) after tick", g.Limit(limiter.Write), wantWrite[i])
			time.Sleep(tick)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close() without members = %v", err)
		}
	})
}

func TestGroupShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 3000, 12000, 1000, 4000, tick))
		ms := join(t, g, 10)
		checkLimit(t, "MinShare()", g.MinShare(), limiter.DefaultMinShare)
		checkLimit(t, "Allow(Read) with 10 members", ms[0].Allow(limiter.Read), 300)
		checkLimit(t, "Allow(Write) with 10 members", ms[0].Allow(limiter.Write), 100)

		// The share comes from the level at the start of the tick, so it
		// does not shrink as members take turns.
		ms[0].Consume(limiter.Read, 300)
		checkLimit(t, "Limit(Read) after a turn", g.Limit(limiter.Read), 2700)
		checkLimit(t, "Allow(Read) after a turn", ms[1].Allow(limiter.Read), 300)

		// 3000/100 = 30 is under the min share of 64.
		ms = append(ms, join(t, g, 90)...)
		if n := g.Members(); n != 100 {
			t.Fatalf("Members() = %d, want 100", n)
		}
		checkLimit(t, "Allow(Read) with 100 members", ms[50].Allow(limiter.Read), 64)
		if err := g.SetMinShare(0); err != nil {
			t.Fatalf("SetMinShare(0) = %v", err)
		}
		checkLimit(t, "Allow(Read), min share 0", ms[50].Allow(limiter.Read), 30)
		checkLimit(t, "Allow(Write), min share 0", ms[50].Allow(limiter.Write), 10)

		if err := g.SetMinShare(-1); !errors.Is(err, limiter.ErrInvalid) {
			t.Errorf("SetMinShare(-1) = %v, want ErrInvalid", err)
		}
		// The effective min share is at most the smaller rate ...
		if err := g.SetMinShare(5000); err != nil {
			t.Fatalf("SetMinShare(5000) = %v", err)
		}
		checkLimit(t, "MinShare() after SetMinShare(5000)", g.MinShare(), 1000)
		checkLimit(t, "Allow(Write) at min share", ms[50].Allow(limiter.Write), 1000)
		checkLimit(t, "Allow(Read) at min share", ms[50].Allow(limiter.Read), 1000)
		// ... and SetConfig applies it again to the new rates.
		if err := g.SetConfig(mustConfig(t, 3000, 12000, 2000, 4000, tick)); err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		checkLimit(t, "MinShare() after SetConfig", g.MinShare(), 2000)
		s := g.Stats()
		if s.Members != 100 || s.MinShare != 2000 || s.ReadLimit != 2700 || s.WriteLimit != 1000 {
			t.Errorf("Stats() = %+v, want 100 members, min share 2000, levels 2700 and 1000", s)
		}
	})
}

func TestGroupExhaustionAndDecrement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, tick))
		ms := join(t, g, 2)
		ms[0].Consume(limiter.Read, 3000)
		// ms[1] has not had a turn this tick: its Allow shows the share.
		steps := []struct {
			n     int64
			level int64
			allow int64
		}{
			{0, 0, 0},
			// Above zero but under the min share: members still wait.
			{-10, 10, 0},
			// Crosses the min share: 110/2 members, at least 64.
			{-100, 110, 64},
			{200, -90, 0},
			// Negative n above the burst is not capped.
			{-20000, 19910, 9955},
			// Positive n above the burst, which a rate.Limiter refuses
			// in one reservation.
			{50000, -30090, 0},
		}
		for _, s := range steps {
			g.Decrement(limiter.Read, s.n)
			checkLimit(t, "Limit(Read) after Decrement", g.Limit(limiter.Read), s.level)
			checkLimit(t, "Allow(Read) after Decrement", ms[1].Allow(limiter.Read), s.allow)
		}
		g.Decrement(limiter.Write, -20000)
		checkLimit(t, "Limit(Write) above burst", g.Limit(limiter.Write), 23000)
		time.Sleep(tick)
		checkLimit(t, "Limit(Write) clipped by the refill", g.Limit(limiter.Write), 12000)
		checkLimit(t, "Limit(Read) one tick later", g.Limit(limiter.Read), -27090)
		if r, w := g.Totals(); r != 3000 || w != 0 {
			t.Errorf("Totals() = %d, %d, want 3000, 0: Decrement does not count", r, w)
		}
		g.Decrement(limiter.Dir(9), 100)
		checkLimit(t, "Limit(bad Dir)", g.Limit(limiter.Dir(9)), limiter.Max)
	})
}

func TestGroupSecondTurnYields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, tick))
		ms := join(t, g, 3)
		checkLimit(t, "Allow(Read) of a first turn", ms[0].Allow(limiter.Read), 1000)
		ms[0].Consume(limiter.Read, 1000)
		// Plenty is left, but a second turn this tick means waiting
		// behind whoever else asks.
		checkLimit(t, "Allow(Read) of a second turn", ms[0].Allow(limiter.Read), 0)
		start := time.Now()
		again := startWait(t.Context(), ms[0], limiter.Read)
		// startWait let the bubble go idle, so the yield is over.
		if err := <-again; err != nil {
			t.Fatalf("Wait for a second turn = %v", err)
		}
		if d := time.Since(start); d > time.Microsecond {
			t.Errorf("Wait for a second turn took %v, want a yield, not a tick", d)
		}
		checkLimit(t, "Allow(Read) after the yield", ms[0].Allow(limiter.Read), 1000)
		ms[0].Consume(limiter.Read, 1000)

		// Now ms[0] waits for a third turn while ms[1] asks: ms[1] goes
		// first, without waiting, and the last 1000 are its.
		third := make(chan error, 1)
		go func() { third <- ms[0].Wait(t.Context(), limiter.Read) }()
		checkLimit(t, "Allow(Read) of another member", ms[1].Allow(limiter.Read), 1000)
		ms[1].Consume(limiter.Read, 1000)
		if err := <-third; err != nil {
			t.Fatalf("Wait for a third turn = %v", err)
		}
		if d := time.Since(start); d != tick {
			t.Errorf("third turn came after %v, want at the next tick (%v)", d, tick)
		}
	})
}

func TestGroupShareSpansOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, tick))
		ms := join(t, g, 3)
		// A share of 1000 per tick, taken in small operations.
		for want := int64(1000); want > 0; want -= 300 {
			checkLimit(t, "Allow(Write) within the share", ms[0].Allow(limiter.Write), want)
			ms[0].Consume(limiter.Write, int(min(want, 300)))
		}
		checkLimit(t, "Allow(Write) with the share used", ms[0].Allow(limiter.Write), 0)
		checkLimit(t, "Allow(Write) of another member", ms[1].Allow(limiter.Write), 1000)
		time.Sleep(tick)
		// 2000 + 3000; the share is 5000/3.
		checkLimit(t, "Allow(Write) next tick", ms[0].Allow(limiter.Write), 1666)
	})
}

func TestGroupTurnCappedByBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, tick))
		ms := join(t, g, 2)
		ms[1].Consume(limiter.Read, 1000)
		ms[1].Leave()
		// The lone member's share is the whole 3000 the tick started
		// with; only 2000 are left, and it gets them now, not next tick.
		checkLimit(t, "Allow(Read) of the lone member", ms[0].Allow(limiter.Read), 2000)
		ms[0].Consume(limiter.Read, 1960)
		// 40 left, under the min share of 64: wait for the refill.
		checkLimit(t, "Allow(Read) under the min share", ms[0].Allow(limiter.Read), 0)
	})
}

func TestGroupDeficitWait(t *testing.T) {
	tests := []struct {
		name    string
		consume int
		ticks   time.Duration
	}{
		// -7000 + 3*3000 = 2000 >= 64.
		{"deep", 10000, 3},
		// -2970 + 3000 = 30 is above zero but under the min share.
		{"under min share", 5970, 2},
		// -2936 + 3000 = 64 is exactly the min share.
		{"at min share", 5936, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := mustGroup(t, mustConfig(t, 3000, 12000, 3000, 12000, tick))
				m := join(t, g, 1)[0]
				m.Consume(limiter.Read, tc.consume)
				start := time.Now()
				if err := m.Wait(t.Context(), limiter.Read); err != nil {
					t.Fatalf("Wait = %v", err)
				}
				if got, want := time.Since(start), tc.ticks*tick; got != want {
					t.Errorf("Wait returned after %v, want %v", got, want)
				}
			})
		})
	}
}

// hammer runs one goroutine per member that takes every turn it gets in
// direction d until ctx ends, and returns what each moved.
func hammer(ctx context.Context, t testing.TB, ms []limiter.Meter, d limiter.Dir, chunk int64) []int64 {
	t.Helper()
	moved := make([]int64, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := min(m.Allow(d), chunk)
				if n == 0 {
					if err := m.Wait(ctx, d); err != nil && ctx.Err() == nil {
						t.Errorf("Wait = %v", err)
					}
					continue
				}
				m.Consume(d, int(n))
				moved[i] += n
			}
		})
	}
	wg.Wait()
	return moved
}

func meters[M limiter.Meter](ms []M) []limiter.Meter {
	out := make([]limiter.Meter, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

func TestGroupFairRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1000 per tick among 30 members is 33 each, under the min share
		// of 64: 15 members move per tick and the queue rotates.
		g := mustGroup(t, mustConfig(t, 1000, 4000, 1000, 4000, tick))
		ms := join(t, g, 30)
		// Empty the bucket so that every member is queued before the
		// first refill; see queueAll.
		g.Decrement(limiter.Read, 1000)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second+time.Millisecond)
		defer cancel()
		moved := hammer(ctx, t, meters(ms), limiter.Read, 16384)
		var sum, lo, hi int64 = 0, moved[0], moved[0]
		for _, n := range moved {
			sum += n
			lo, hi = min(lo, n), max(hi, n)
		}
		// 100 refills, less what is left over under one share.
		if sum <= 100*1000-64 || sum > 100*1000 {
			t.Errorf("sum moved = %d, want within (99936, 100000]", sum)
		}
		if hi-lo > 64 {
			t.Errorf("per-member moved in [%d, %d], want a spread of at most one share (64)", lo, hi)
		}
		if r, _ := g.Totals(); r != sum {
			t.Errorf("Totals() read = %d, want %d", r, sum)
		}
		t.Logf("30 members, 1000 B/tick, 10 s: total %d, per member [%d, %d]", sum, lo, hi)
	})
}

func TestGroupUnusedTurnGoesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 200, 800, 200, 800, tick))
		if err := g.SetMinShare(100); err != nil {
			t.Fatalf("SetMinShare = %v", err)
		}
		ms := join(t, g, 2)
		ms[0].Consume(limiter.Read, 400) // -200
		a := startWait(t.Context(), ms[0], limiter.Read)
		b := startWait(t.Context(), ms[1], limiter.Read)
		if s := g.Stats(); s.ReadWaiters != 2 {
			t.Fatalf("Stats().ReadWaiters = %d, want 2", s.ReadWaiters)
		}
		start := time.Now()
		// -200 + 2*200 = 200: two turns of 100.
		if err := <-a; err != nil {
			t.Fatalf("first Wait = %v", err)
		}
		if err := <-b; err != nil {
			t.Fatalf("second Wait = %v", err)
		}
		if d := time.Since(start); d != 2*tick {
			t.Errorf("Waits returned after %v, want %v", d, 2*tick)
		}
		checkLimit(t, "Allow(Read) with a turn", ms[0].Allow(limiter.Read), 100)
		ms[0].Consume(limiter.Read, 10)
		ms[1].Consume(limiter.Read, 100)
		// 90 of the first turn went back: 90 left, under a share of 100.
		checkLimit(t, "Limit(Read)", g.Limit(limiter.Read), 90)
		checkLimit(t, "Allow(Read) without a turn", ms[1].Allow(limiter.Read), 0)
	})
}

func TestGroupSetConfigWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
		ms := join(t, g, 3)
		ms[0].Consume(limiter.Write, 10100) // -10000: 101 ticks at 100
		var done []<-chan error
		for _, m := range ms {
			done = append(done, startWait(t.Context(), m, limiter.Write))
		}
		start := time.Now()
		time.Sleep(tick / 2)
		checkPending(t, "before SetConfig", done[0])
		// At 6000 per tick: -10000 + 2*6000 = 2000, a turn of 666 each.
		if err := g.SetConfig(mustConfig(t, 100, 400, 6000, 24000, tick)); err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		for i, c := range done {
			if err := <-c; err != nil {
				t.Fatalf("Wait %d = %v", i, err)
			}
		}
		if got, want := time.Since(start), 2*tick; got != want {
			t.Errorf("Waits returned after %v, want %v", got, want)
		}
		for i, m := range ms {
			checkLimit(t, "Allow(Write) after the new config", m.Allow(limiter.Write), 666)
			m.Consume(limiter.Write, 666)
			_ = i
		}

		// Waiters then move at the new rate.
		g.ResetTotals()
		// Ten refills of 6000, on top of the 2 left.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second+time.Millisecond)
		defer cancel()
		hammer(ctx, t, meters(ms), limiter.Write, 16384)
		if _, w := g.Totals(); w != 60000 {
			t.Errorf("Totals() written in 1 s = %d, want 60000", w)
		}
	})
}

func TestGroupLeaveWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
		ms := join(t, g, 2)
		ms[0].Consume(limiter.Read, 1000) // -900: a turn at 64 after 10 ticks
		head := startWait(t.Context(), ms[0], limiter.Read)
		next := startWait(t.Context(), ms[1], limiter.Read)
		start := time.Now()
		time.Sleep(3 * tick)
		ms[0].Leave()
		if err := <-head; err != nil {
			t.Fatalf("Wait of the leaving member = %v, want nil", err)
		}
		if d := time.Since(start); d != 3*tick {
			t.Errorf("Wait of the leaving member returned after %v, want %v", d, 3*tick)
		}
		checkLimit(t, "Allow(Read) after Leave", ms[0].Allow(limiter.Read), limiter.Max)
		if err := ms[0].Wait(t.Context(), limiter.Read); err != nil {
			t.Errorf("Wait after Leave = %v, want nil", err)
		}
		ms[0].Consume(limiter.Read, 1000) // no longer counted
		ms[0].Leave()
		if n := g.Members(); n != 1 {
			t.Errorf("Members() = %d, want 1", n)
		}
		// The remaining waiter became the head and is served on time.
		if err := <-next; err != nil {
			t.Fatalf("Wait of the remaining member = %v", err)
		}
		if d := time.Since(start); d != 10*tick {
			t.Errorf("Wait of the remaining member returned after %v, want %v", d, 10*tick)
		}
		checkLimit(t, "Allow(Read) of the remaining member", ms[1].Allow(limiter.Read), 100)
		if r, _ := g.Totals(); r != 1000 {
			t.Errorf("Totals() read = %d, want 1000", r)
		}
	})
}

func TestGroupClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
		m, err := g.Join()
		if err != nil {
			t.Fatalf("Join() = %v", err)
		}
		if err := g.Close(); !errors.Is(err, limiter.ErrGroupBusy) {
			t.Errorf("Close() with a member = %v, want ErrGroupBusy", err)
		}
		// A refused Close changes nothing.
		m2, err := g.Join()
		if err != nil {
			t.Fatalf("Join() after a refused Close = %v", err)
		}
		m.Leave()
		m2.Leave()
		for range 2 {
			if err := g.Close(); err != nil {
				t.Errorf("Close() = %v, want nil", err)
			}
		}
		if m, err := g.Join(); !errors.Is(err, limiter.ErrClosed) || m != nil {
			t.Errorf("Join() after Close = %v, %v, want nil, ErrClosed", m, err)
		}
	})
}

func TestMemberWaitContext(t *testing.T) {
	errCause := errors.New("test cause")
	tests := []struct {
		name string
		ctx  func(context.Context) (context.Context, func())
		want []error
	}{
		{"canceled", func(p context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancel(p)
			time.AfterFunc(tick/2, cancel)
			return ctx, cancel
		}, []error{context.Canceled}},
		{"cause", func(p context.Context) (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(p)
			time.AfterFunc(tick/2, func() { cancel(errCause) })
			return ctx, func() { cancel(nil) }
		}, []error{context.Canceled, errCause}},
		{"deadline", func(p context.Context) (context.Context, func()) {
			return context.WithTimeout(p, tick/2)
		}, []error{context.DeadlineExceeded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
				ms := join(t, g, 2)
				ms[0].Consume(limiter.Read, 136) // -36: 64 after one tick
				// The second member queues behind the first, which gives
				// up: the second must still be served at the next tick.
				ctx, cancel := tc.ctx(t.Context())
				defer cancel()
				first := startWait(ctx, ms[0], limiter.Read)
				second := startWait(t.Context(), ms[1], limiter.Read)
				start := time.Now()
				err := <-first
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("Wait = %v, want errors.Is %v", err, w)
					}
				}
				if d := time.Since(start); d != tick/2 {
					t.Errorf("Wait returned after %v, want %v", d, tick/2)
				}
				if n := g.Stats().ReadWaiters; n != 1 {
					t.Errorf("Stats().ReadWaiters = %d after a cancelled Wait, want 1", n)
				}
				if err := <-second; err != nil {
					t.Fatalf("second Wait = %v", err)
				}
				if d := time.Since(start); d != tick {
					t.Errorf("second Wait returned after %v, want %v", d, tick)
				}
			})
		})
	}
}

func TestMemberUnknownDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
		m := join(t, g, 1)[0]
		bad := limiter.Dir(-1)
		checkLimit(t, "Allow(bad)", m.Allow(bad), limiter.Max)
		m.Consume(bad, 100)
		if err := m.Wait(t.Context(), bad); !errors.Is(err, limiter.ErrInvalid) {
			t.Errorf("Wait(bad) = %v, want ErrInvalid", err)
		}
		if r, w := g.Totals(); r != 0 || w != 0 {
			t.Errorf("Totals() = %d, %d, want 0, 0", r, w)
		}
	})
}

func TestGroupTotals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGroup(t, mustConfig(t, 1000, 4000, 1000, 4000, tick))
		ms := join(t, g, 3)
		ms[0].Consume(limiter.Read, 10)
		ms[1].Consume(limiter.Read, 20)
		ms[2].Consume(limiter.Write, 5)
		ms[2].Consume(limiter.Write, -5)
		if r, w := g.Totals(); r != 30 || w != 5 {
			t.Errorf("Totals() = %d, %d, want 30, 5", r, w)
		}
		// One lease so far: the in-process store's, at the start.
		want := limiter.GroupStats{ReadLimit: 970, WriteLimit: 995, TotalRead: 30, TotalWritten: 5, Members: 3, MinShare: 64, Leases: 1}
		if s := g.Stats(); s != want {
			t.Errorf("Stats() = %+v, want %+v", s, want)
		}
		time.Sleep(3 * tick)
		// Three ticks pass, but the store is asked once, by this call.
		want.ReadLimit, want.WriteLimit, want.Leases = 3970, 3995, 2
		if s := g.Stats(); s != want {
			t.Errorf("Stats() three ticks later = %+v, want %+v", s, want)
		}
		g.ResetTotals()
		if r, w := g.Totals(); r != 0 || w != 0 {
			t.Errorf("Totals() after ResetTotals = %d, %d, want 0, 0", r, w)
		}
		if c := g.Config(); *c != *mustConfig(t, 1000, 4000, 1000, 4000, tick) {
			t.Errorf("Config() = %+v", c)
		}
		if err := g.SetConfig(nil); !errors.Is(err, limiter.ErrInvalidConfig) {
			t.Errorf("SetConfig(nil) = %v, want ErrInvalidConfig", err)
		}
	})
}
