package limiter_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/limiter"
)

const tick = 100 * time.Millisecond

func mustConfig(t testing.TB, rr, rb, wr, wb int64, tk time.Duration) *limiter.Config {
	t.Helper()
	c, err := limiter.NewConfig(rr, rb, wr, wb, tk)
	if err != nil {
		t.Fatalf("NewConfig(%d, %d, %d, %d, %v) = %v", rr, rb, wr, wb, tk, err)
	}
	return c
}

func mustBucket(t testing.TB, cfg *limiter.Config, opts ...limiter.Option) *limiter.Bucket {
	t.Helper()
	b, err := limiter.NewBucket(cfg, opts...)
	if err != nil {
		t.Fatalf("NewBucket(%+v) = %v", cfg, err)
	}
	return b
}

func checkLimit(t testing.TB, what string, got, want int64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// The bubble's clock starts at 2000-01-01 00:00:00 UTC, a multiple of
// every tick used here, so tick boundaries fall on whole multiples of tick
// after the start.

func TestBucketRefill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 30, 60, tick))
		checkLimit(t, "Limit(Read) at start", b.Limit(limiter.Read), 100)
		checkLimit(t, "Limit(Write) at start", b.Limit(limiter.Write), 30)
		wantRead := []int64{200, 300, 400, 400, 400}
		wantWrite := []int64{60, 60, 60, 60, 60}
		for i := range wantRead {
			time.Sleep(tick)
			checkLimit(t, "Limit(Read) after tick", b.Limit(limiter.Read), wantRead[i])
			checkLimit(t, "Limit(Write) after tick", b.Limit(limiter.Write), wantWrite[i])
		}
		checkLimit(t, "Allow(Read)", b.Allow(limiter.Read), 400)
	})
}

// A Config whose Tick is zero refills once a second, libevent's default
// tick: nothing 1 ms before the second, the rate on it.
func TestBucketDefaultTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, &limiter.Config{ReadRate: 100, ReadBurst: 400, WriteRate: 100, WriteBurst: 400})
		b.Consume(limiter.Read, 100)
		time.Sleep(time.Second - time.Millisecond)
		checkLimit(t, "Limit(Read) 1ms before the second", b.Limit(limiter.Read), 0)
		time.Sleep(time.Millisecond)
		checkLimit(t, "Limit(Read) on the second", b.Limit(limiter.Read), 100)
	})
}

func TestBucketTickAlignment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(tick / 2)
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		time.Sleep(tick/2 - time.Millisecond)
		checkLimit(t, "Limit(Read) 1ms before the boundary", b.Limit(limiter.Read), 100)
		time.Sleep(time.Millisecond)
		// Half a tick after creation, but on an absolute boundary.
		checkLimit(t, "Limit(Read) on the boundary", b.Limit(limiter.Read), 200)
	})
}

func TestBucketDeficit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		b.Consume(limiter.Read, 1000)
		checkLimit(t, "Limit(Read) after Consume(1000)", b.Limit(limiter.Read), -900)
		checkLimit(t, "Allow(Read) after Consume(1000)", b.Allow(limiter.Read), 0)
		checkLimit(t, "Limit(Write) untouched", b.Limit(limiter.Write), 100)
		// -900 + 9*100 = 0 is still empty; the tenth tick lifts it to 100.
		for i := 1; i <= 9; i++ {
			time.Sleep(tick)
			checkLimit(t, "Allow(Read) while in deficit", b.Allow(limiter.Read), 0)
		}
		checkLimit(t, "Limit(Read) after 9 ticks", b.Limit(limiter.Read), 0)
		time.Sleep(tick)
		checkLimit(t, "Limit(Read) after 10 ticks", b.Limit(limiter.Read), 100)
	})
}

func TestBucketWaitTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		start := time.Now()
		if err := b.Wait(t.Context(), limiter.Read); err != nil {
			t.Fatalf("Wait with tokens = %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait with tokens took %v, want 0", d)
		}
		time.Sleep(tick / 4)
		b.Consume(limiter.Read, 1000)
		if err := b.Wait(t.Context(), limiter.Read); err != nil {
			t.Fatalf("Wait in deficit = %v", err)
		}
		if got, want := time.Since(start), 10*tick; got != want {
			t.Errorf("Wait in deficit returned %v after start, want %v", got, want)
		}
		checkLimit(t, "Allow(Read) after Wait", b.Allow(limiter.Read), 100)
	})
}

func TestBucketDecrement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		steps := []struct {
			n    int64
			want int64
		}{
			{150, -50},    // crosses from >0 to <=0
			{-50, 0},      // still empty
			{-60, 60},     // crosses back above zero
			{-1000, 1060}, // negative n is not capped at the burst
			{0, 1060},
		}
		for _, s := range steps {
			b.Decrement(limiter.Write, s.n)
			checkLimit(t, "Limit(Write) after Decrement", b.Limit(limiter.Write), s.want)
		}
		checkLimit(t, "Allow(Write) above burst", b.Allow(limiter.Write), 1060)
		time.Sleep(tick)
		checkLimit(t, "Limit(Write) after the next refill", b.Limit(limiter.Write), 400)
		checkLimit(t, "Limit(Read) untouched, one tick later", b.Limit(limiter.Read), 200)
	})
}

func TestBucketNoOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, limiter.Max/2, limiter.Max, 1, 1, tick))
		b.Decrement(limiter.Read, limiter.Max)
		checkLimit(t, "Limit(Read) after Decrement(Max)", b.Limit(limiter.Read), limiter.Max/2-limiter.Max)
		b.Decrement(limiter.Read, limiter.Max)
		checkLimit(t, "Limit(Read) saturates", b.Limit(limiter.Read), -limiter.Max)
		time.Sleep(tick)
		checkLimit(t, "Limit(Read) after one tick", b.Limit(limiter.Read), -limiter.Max+limiter.Max/2)
		time.Sleep(2 * tick)
		checkLimit(t, "Limit(Read) after three ticks", b.Limit(limiter.Read), 1<<62-2)
		time.Sleep(tick)
		checkLimit(t, "Limit(Read) after four ticks", b.Limit(limiter.Read), limiter.Max-2)
		time.Sleep(tick)
		checkLimit(t, "Limit(Read) after five ticks", b.Limit(limiter.Read), limiter.Max)
		b.Decrement(limiter.Read, -limiter.Max)
		checkLimit(t, "Limit(Read) saturates upward", b.Limit(limiter.Read), limiter.Max)

		// A rate-1 bucket deep in debt waits at most maxWait per timer and
		// stays releasable.
		b.Decrement(limiter.Write, limiter.Max)
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		if err := b.Wait(ctx, limiter.Write); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait deep in debt = %v, want DeadlineExceeded", err)
		}
	})
}

func TestBucketDecrementWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		b.Decrement(limiter.Read, 10000)
		start := time.Now()
		done := make(chan error)
		go func() { done <- b.Wait(t.Context(), limiter.Read) }()
		synctest.Wait()
		if got := b.Stats().Waiters; got != 1 {
			t.Errorf("Stats().Waiters = %d, want 1", got)
		}
		b.Decrement(limiter.Read, -5000) // still <= 0: the waiter goes back to sleep
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Wait returned %v while the bucket is still empty", err)
		default:
		}
		b.Decrement(limiter.Read, -4901)
		if err := <-done; err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait returned after %v, want at once", d)
		}
		checkLimit(t, "Limit(Read)", b.Limit(limiter.Read), 1)
	})
}

func TestBucketSetConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		time.Sleep(5 * tick)
		checkLimit(t, "Limit(Read) full", b.Limit(limiter.Read), 400)

		// Same values: no-op.
		if err := b.SetConfig(mustConfig(t, 100, 400, 100, 400, tick)); err != nil {
			t.Fatalf("SetConfig(same) = %v", err)
		}
		checkLimit(t, "Limit(Read) after same config", b.Limit(limiter.Read), 400)

		// A smaller burst clips the level; it is not reset to the rate.
		if err := b.SetConfig(mustConfig(t, 50, 200, 100, 1000, tick)); err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		checkLimit(t, "Limit(Read) clipped", b.Limit(limiter.Read), 200)
		checkLimit(t, "Limit(Write) not raised", b.Limit(limiter.Write), 400)
		if got := b.Config(); got.ReadRate != 50 || got.WriteBurst != 1000 {
			t.Errorf("Config() = %+v, want the new config", got)
		}

		// An invalid config changes nothing.
		if err := b.SetConfig(&limiter.Config{ReadRate: 5}); !errors.Is(err, limiter.ErrInvalidConfig) {
			t.Errorf("SetConfig(invalid) = %v, want ErrInvalidConfig", err)
		}
		checkLimit(t, "Limit(Read) after invalid config", b.Limit(limiter.Read), 200)

		// nil removes the limit; a new config starts again at the rate.
		if err := b.SetConfig(nil); err != nil {
			t.Fatalf("SetConfig(nil) = %v", err)
		}
		checkLimit(t, "Limit(Read) without config", b.Limit(limiter.Read), limiter.Max)
		if b.Config() != nil {
			t.Errorf("Config() = %+v, want nil", b.Config())
		}
		if err := b.SetConfig(mustConfig(t, 70, 400, 100, 400, tick)); err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		checkLimit(t, "Limit(Read) after first config again", b.Limit(limiter.Read), 70)
	})
}

func TestBucketSetConfigWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		b.Consume(limiter.Write, 1100) // -1000: 11 ticks at 100
		start := time.Now()
		done := make(chan error)
		go func() { done <- b.Wait(t.Context(), limiter.Write) }()
		synctest.Wait()
		// At 1000 per tick the level is above zero after 2 ticks.
		if err := b.SetConfig(mustConfig(t, 100, 400, 1000, 4000, tick)); err != nil {
			t.Fatalf("SetConfig = %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if got, want := time.Since(start), 2*tick; got != want {
			t.Errorf("Wait returned after %v, want %v", got, want)
		}
		checkLimit(t, "Limit(Write)", b.Limit(limiter.Write), 1000)

		// Removing the limit releases a waiter at once.
		b.Consume(limiter.Write, 5000)
		go func() { done <- b.Wait(t.Context(), limiter.Write) }()
		synctest.Wait()
		start = time.Now()
		if err := b.SetConfig(nil); err != nil {
			t.Fatalf("SetConfig(nil) = %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Wait = %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Wait returned %v after SetConfig(nil), want at once", d)
		}
	})
}

func TestBucketNoConfig(t *testing.T) {
	b := mustBucket(t, nil)
	for _, d := range []limiter.Dir{limiter.Read, limiter.Write} {
		checkLimit(t, "Limit", b.Limit(d), limiter.Max)
		checkLimit(t, "Allow", b.Allow(d), limiter.Max)
		b.Consume(d, 100)
		b.Decrement(d, 100)
		checkLimit(t, "Limit after Consume and Decrement", b.Limit(d), limiter.Max)
		if err := b.Wait(t.Context(), d); err != nil {
			t.Errorf("Wait(%v) = %v, want nil", d, err)
		}
	}
	if s := b.Stats(); s != (limiter.BucketStats{ReadLimit: limiter.Max, WriteLimit: limiter.Max}) {
		t.Errorf("Stats() = %+v, want unlimited", s)
	}
	if _, err := limiter.NewBucket(&limiter.Config{}); !errors.Is(err, limiter.ErrInvalidConfig) {
		t.Errorf("NewBucket(zero Config) = %v, want ErrInvalidConfig", err)
	}
}

func TestBucketUnknownDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		bad := limiter.Dir(2)
		checkLimit(t, "Limit(bad)", b.Limit(bad), limiter.Max)
		checkLimit(t, "Allow(bad)", b.Allow(bad), limiter.Max)
		b.Consume(bad, 10)
		b.Decrement(bad, 10)
		if err := b.Wait(t.Context(), bad); !errors.Is(err, limiter.ErrInvalid) {
			t.Errorf("Wait(bad) = %v, want ErrInvalid", err)
		}
		checkLimit(t, "Limit(Read)", b.Limit(limiter.Read), 100)
		checkLimit(t, "Limit(Write)", b.Limit(limiter.Write), 100)
	})
}

func TestBucketWaitContext(t *testing.T) {
	errCause := errors.New("test cause")
	tests := []struct {
		name     string
		ctx      func(context.Context) (context.Context, func())
		want     []error
		wantTime time.Duration
	}{
		{
			name: "canceled",
			ctx: func(p context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancel(p)
				time.AfterFunc(3*tick/2, cancel)
				return ctx, cancel
			},
			want:     []error{context.Canceled},
			wantTime: 3 * tick / 2,
		},
		{
			name: "cause",
			ctx: func(p context.Context) (context.Context, func()) {
				ctx, cancel := context.WithCancelCause(p)
				time.AfterFunc(tick/2, func() { cancel(errCause) })
				return ctx, func() { cancel(nil) }
			},
			want:     []error{context.Canceled, errCause},
			wantTime: tick / 2,
		},
		{
			name: "deadline",
			ctx: func(p context.Context) (context.Context, func()) {
				return context.WithTimeout(p, 250*time.Millisecond)
			},
			want:     []error{context.DeadlineExceeded},
			wantTime: 250 * time.Millisecond,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := mustBucket(t, mustConfig(t, 1, 1, 1, 1, tick))
				b.Consume(limiter.Read, 100)
				ctx, cancel := tc.ctx(t.Context())
				defer cancel()
				start := time.Now()
				err := b.Wait(ctx, limiter.Read)
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("Wait = %v, want errors.Is %v", err, w)
					}
				}
				if d := time.Since(start); d != tc.wantTime {
					t.Errorf("Wait returned after %v, want %v", d, tc.wantTime)
				}
				if n := b.Stats().Waiters; n != 0 {
					t.Errorf("Stats().Waiters = %d after Wait, want 0", n)
				}
			})
		})
	}
}

func TestBucketStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 10, 40, tick))
		b.Consume(limiter.Write, 25)
		time.Sleep(tick)
		want := limiter.BucketStats{Limited: true, ReadLimit: 200, WriteLimit: -5}
		if s := b.Stats(); s != want {
			t.Errorf("Stats() = %+v, want %+v", s, want)
		}
	})
}

func TestSetConfigNewTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := mustBucket(t, mustConfig(t, 100, 400, 100, 400, tick))
		g := mustGroup(t, mustConfig(t, 100, 400, 100, 400, tick))
		time.Sleep(250 * time.Millisecond)
		// Two refills under the old tick, then whole seconds.
		next := mustConfig(t, 1000, 4000, 1000, 4000, time.Second)
		if err := b.SetConfig(next); err != nil {
			t.Fatalf("Bucket.SetConfig = %v", err)
		}
		if err := g.SetConfig(next); err != nil {
			t.Fatalf("Group.SetConfig = %v", err)
		}
		checkLimit(t, "Bucket.Limit(Read) after the change", b.Limit(limiter.Read), 300)
		checkLimit(t, "Group.Limit(Read) after the change", g.Limit(limiter.Read), 300)
		time.Sleep(750*time.Millisecond - time.Nanosecond)
		checkLimit(t, "Bucket.Limit(Read) before the second boundary", b.Limit(limiter.Read), 300)
		checkLimit(t, "Group.Limit(Read) before the second boundary", g.Limit(limiter.Read), 300)
		time.Sleep(time.Nanosecond)
		checkLimit(t, "Bucket.Limit(Read) on the second boundary", b.Limit(limiter.Read), 1300)
		checkLimit(t, "Group.Limit(Read) on the second boundary", g.Limit(limiter.Read), 1300)
	})
}
