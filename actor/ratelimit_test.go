package actor_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// countingReader enables reading on b and counts what arrives.
func countingReader(b *actor.Bufferevent) *atomic.Int64 {
	var n atomic.Int64
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		n.Add(int64(s.Input().Len()))
		s.Input().Drain(s.Input().Len())
	}})
	b.Enable(actor.Read)
	return &n
}

// keepFull tops a's output up whenever it drains, so a always has data.
func keepFull(a *actor.Bufferevent, chunk []byte) {
	a.SetWatermark(actor.Write, len(chunk), 0)
	a.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) { s.Write(chunk) }})
	a.Write(chunk)
	a.Write(chunk)
}

// limitSide gives the pair's writing end a (side "writer") or its reading
// end b (side "reader") a rate limit of rate and burst per tick both ways.
func limitSide(t *testing.T, side string, a, b *actor.Bufferevent, rate, burst int64, tick time.Duration) {
	t.Helper()
	cfg, err := limiter.NewConfig(rate, burst, rate, burst, tick)
	if err != nil {
		t.Fatal(err)
	}
	limited := a
	if side == "reader" {
		limited = b
	}
	if err := limited.SetRateLimit(cfg); err != nil {
		t.Fatal(err)
	}
}

// A pair obeys a per-bufferevent limit on writing and on reading (libevent
// ignores limits on pairs; here they are the same loops as sockets).
func TestRateLimitPair(t *testing.T) {
	for _, side := range []string{"writer", "reader"} {
		t.Run(side, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := actor.NewBase()
				defer base.Close()
				a, b, _ := actor.NewPair(base, 0)
				limitSide(t, side, a, b, 1000, 4000, 100*time.Millisecond)
				got := countingReader(b)
				keepFull(a, make([]byte, 1024))
				time.Sleep(2 * time.Second) // the bubble's clock
				synctest.Wait()
				// The bucket starts at the rate (1000) and gains 1000 at each
				// of the 20 tick boundaries: 21000 bytes at most, and one
				// tick's worth less at the least.
				if n := got.Load(); n < 20000 || n > 21000 {
					t.Errorf("moved %d bytes in 2 s at 1000 B per 100 ms, want 20000..21000", n)
				}
				a.Close()
				b.Close()
			})
		})
	}
}

// While a read waits on its bucket, the read timeout does not run
// (libevent's suspension rule): a 50 ms timeout never fires although the
// bucket holds reads back for 100 ms at a time.
func TestRateLimitSuspendsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		a, b, _ := actor.NewPair(base, 0)
		cfg, _ := limiter.NewConfig(10, 10, 10, 10, 100*time.Millisecond)
		b.SetRateLimit(cfg)
		var timeouts atomic.Int32
		got := countingReader(b)
		cbs := b.Callbacks()
		cbs.Event = func(_ *actor.Session, ev actor.Event, _ error) {
			if ev&actor.Timeout != 0 {
				timeouts.Add(1)
			}
		}
		b.SetCallbacks(cbs)
		b.SetTimeouts(50*time.Millisecond, 0)
		a.Write(make([]byte, 1000))
		time.Sleep(time.Second)
		synctest.Wait()
		if n := timeouts.Load(); n != 0 {
			t.Errorf("%d read timeouts while the bucket held reads back, want 0", n)
		}
		if n := got.Load(); n < 100 || n > 110 {
			t.Errorf("read %d bytes in 1 s at 10 B per 100 ms, want 100..110", n)
		}
		a.Write([]byte{}) // nothing: the stream stays open
		b.SetRateLimit(nil)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if n := got.Load(); n != 1000 {
			t.Errorf("after the limit was removed %d bytes had arrived, want 1000", n)
		}
		a.Close()
		b.Close()
	})
}

// Members of a group share its budget fairly.
func TestRateLimitGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		cfg, _ := limiter.NewConfig(2000, 8000, 2000, 8000, 100*time.Millisecond)
		g, err := limiter.NewGroup(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var counts []*atomic.Int64
		var bevs, senders []*actor.Bufferevent
		for range 4 {
			a, b, _ := actor.NewPair(base, 0)
			if err := a.JoinGroup(g); err != nil {
				t.Fatal(err)
			}
			if a.Group() != g {
				t.Fatalf("Group() after JoinGroup is not the group")
			}
			counts = append(counts, countingReader(b))
			bevs = append(bevs, a, b)
			senders = append(senders, a)
		}
		// Every member has joined before any sends: the share is the
		// group's bucket over all four from the first byte.
		for _, a := range senders {
			keepFull(a, make([]byte, 1024))
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		var total int64
		for _, c := range counts {
			total += c.Load()
		}
		// 2000 B per 100 ms: 20000 B/s, 100000 B in 5 s (+ the first tick).
		if total < 100000 || total > 102000 {
			t.Errorf("group moved %d bytes in 5 s, want about 100000", total)
		}
		for i, c := range counts {
			if n := c.Load(); n < total/4-1024 || n > total/4+1024 {
				t.Errorf("member %d moved %d of %d bytes, want a fair quarter", i, n, total)
			}
		}
		if _, written := g.Totals(); written < total {
			t.Errorf("group totals: written %d, want >= %d delivered", written, total)
		}
		if err := g.Close(); !errors.Is(err, limiter.ErrGroupBusy) {
			t.Errorf("Group.Close() with members = %v, want ErrGroupBusy", err)
		}
		for _, b := range bevs {
			b.Close()
		}
		if err := g.Close(); err != nil {
			t.Errorf("Group.Close() after the members closed = %v", err)
		}
	})
}

func TestRateLimitGetters(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	if got := a.ReadLimit(); got != limiter.Max {
		t.Errorf("ReadLimit() without a limit = %d, want limiter.Max", got)
	}
	if got := a.MaxToRead(); got != actor.PairMaxIO {
		t.Errorf("MaxToRead() without a limit = %d, want the per-read maximum %d", got, actor.PairMaxIO)
	}
	if err := a.DecrementReadLimit(1); !errors.Is(err, actor.ErrNoRateLimit) {
		t.Errorf("DecrementReadLimit() without a limit = %v, want ErrNoRateLimit", err)
	}
	if a.RateLimit() != nil {
		t.Errorf("RateLimit() without a limit is not nil")
	}
	cfg, _ := limiter.NewConfig(100, 400, 200, 800, time.Hour)
	if err := a.SetRateLimit(cfg); err != nil {
		t.Fatal(err)
	}
	if got := a.RateLimit(); got == nil || got.WriteRate != 200 {
		t.Errorf("RateLimit() = %+v, want the config set", got)
	}
	if r, w := a.ReadLimit(), a.WriteLimit(); r != 100 || w != 200 {
		t.Errorf("limits = %d, %d, want the rates 100, 200", r, w)
	}
	a.DecrementReadLimit(150)
	if got := a.ReadLimit(); got != -50 {
		t.Errorf("ReadLimit() after decrementing 150 = %d, want -50", got)
	}
	if got := a.MaxToRead(); got != 0 {
		t.Errorf("MaxToRead() with a negative bucket = %d, want 0", got)
	}
	a.DecrementWriteLimit(-1000) // negative adds tokens, past the burst
	if got := a.WriteLimit(); got != 1200 {
		t.Errorf("WriteLimit() after adding 1000 = %d, want 1200", got)
	}
	if got := a.MaxToWrite(); got != 1200 {
		t.Errorf("MaxToWrite() = %d, want 1200", got)
	}
	if err := a.SetRateLimit(&limiter.Config{ReadRate: 0}); !errors.Is(err, limiter.ErrInvalidConfig) {
		t.Errorf("SetRateLimit(bad) = %v, want ErrInvalidConfig", err)
	}
	if err := a.JoinGroup(nil); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("JoinGroup(nil) = %v, want ErrInvalid", err)
	}
	// A zero Group has no config to share: joining it used to succeed, and
	// the first read or write divided by its zero tick.
	if err := a.JoinGroup(new(limiter.Group)); !errors.Is(err, limiter.ErrInvalid) || a.Group() != nil {
		t.Errorf("JoinGroup(zero group) = %v, Group() = %p; want limiter.ErrInvalid, nil", err, a.Group())
	}
	g, _ := limiter.NewGroup(cfg)
	a.JoinGroup(g)
	if g.Members() != 1 {
		t.Errorf("members after JoinGroup = %d", g.Members())
	}
	a.LeaveGroup()
	if g.Members() != 0 || a.Group() != nil {
		t.Errorf("LeaveGroup() left members = %d, Group() = %p", g.Members(), a.Group())
	}
	a.JoinGroup(g)
	a.Close()
	if err := g.Close(); err != nil {
		t.Errorf("Group.Close() after its member closed = %v", err)
	}
	if err := a.SetRateLimit(nil); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("SetRateLimit after Close = %v, want ErrClosed", err)
	}
}

// A bufferevent belongs to at most one group: joining a second leaves the
// first, whose budget it then no longer draws on, and its traffic counts
// in the second's totals only.
func TestJoinGroupLeavesTheOther(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	cfg, err := limiter.NewConfig(1<<20, 1<<20, 1<<20, 1<<20, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	g1, _ := limiter.NewGroup(cfg)
	g2, _ := limiter.NewGroup(cfg)
	if err := a.JoinGroup(g1); err != nil {
		t.Fatal(err)
	}
	if err := a.JoinGroup(g2); err != nil {
		t.Fatal(err)
	}
	if g1.Members() != 0 || g2.Members() != 1 || a.Group() != g2 {
		t.Fatalf("after joining g1 then g2: g1 has %d members, g2 %d, Group() is g2: %v; want 0, 1, true",
			g1.Members(), g2.Members(), a.Group() == g2)
	}
	got := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		if s.Input().Len() == 100 {
			got <- struct{}{}
		}
	}})
	b.Enable(actor.Read)
	a.Write(make([]byte, 100))
	testkit.Recv(t, got, "100 bytes through a member of g2")
	a.Close() // joins the writer, which counts a write once it returns
	if _, w := g1.Totals(); w != 0 {
		t.Errorf("g1 counted %d bytes written after a left it, want 0", w)
	}
	if _, w := g2.Totals(); w != 100 {
		t.Errorf("g2 counted %d bytes written, want 100", w)
	}
	if err := g1.Close(); err != nil {
		t.Errorf("g1.Close() = %v", err)
	}
	if err := g2.Close(); err != nil {
		t.Errorf("g2.Close() after its member closed = %v", err)
	}
}

// BenchmarkRateLimitCost streams through a pair whose ends carry a rate
// limit so high it never waits, next to the same pair without one: the
// cost of consulting the limiter on every read and write.
func BenchmarkRateLimitCost(b *testing.B) {
	huge, err := limiter.NewConfig(1<<50, 1<<50, 1<<50, 1<<50, limiter.DefaultTick)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, tc := range []struct {
			name  string
			limit *limiter.Config
		}{{"none", nil}, {"unlimited", huge}} {
			b.Run(fmt.Sprintf("%s/%dB", tc.name, size), func(b *testing.B) {
				send, wait := pairStream(b, size, tc.limit)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					send()
				}
				wait()
			})
		}
	}
}

// A bufferevent's own rate limit runs on its Base's clock: with an
// hour-long tick, the bytes beyond the first tick's pass only when the
// injected clock moves on, never on the real clock's time.
func TestRateLimitFollowsBaseClock(t *testing.T) {
	for _, side := range []string{"writer", "reader"} {
		t.Run(side, func(t *testing.T) {
			clock := testbev.NewManualClock()
			a, b, err := actor.NewPair(testbev.NewBaseClock(t, clock), 0)
			if err != nil {
				t.Fatal(err)
			}
			limitSide(t, side, a, b, 100, 100, time.Hour)
			reads := make(chan int, 64)
			b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				n := s.Input().Len()
				s.Input().Drain(n)
				reads <- n
			}})
			if err := b.Enable(actor.Read); err != nil {
				t.Fatal(err)
			}
			got := 0
			// arrive takes reads until want bytes have come, and fails
			// on more, or on less within 5 s.
			arrive := func(want int) {
				t.Helper()
				deadline := time.After(5 * time.Second)
				for got < want {
					select {
					case n := <-reads:
						got += n
					case <-deadline:
						t.Fatalf("%d bytes arrived within 5s, want %d", got, want)
					}
				}
				if got != want {
					t.Fatalf("%d bytes arrived, want %d", got, want)
				}
			}
			if err := a.Write(make([]byte, 250)); err != nil {
				t.Fatal(err)
			}
			// Each step waits until the limited loop has armed its wait for
			// the next tick, then moves the clock on to it.
			arrive(100)
			testbev.WaitArmed(t, clock)
			clock.Advance(time.Hour)
			arrive(200)
			testbev.WaitArmed(t, clock)
			clock.Advance(time.Hour)
			arrive(250)
			a.Close()
			b.Close()
		})
	}
}
