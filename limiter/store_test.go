package limiter_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/limiter"
)

// testStore is a Store the test drives by hand: it grants nothing at
// Renew, so the test calls Grant as a store's goroutine would.
type testStore struct {
	g        *limiter.Group
	startErr error
	closed   int
}

func (s *testStore) Start(g *limiter.Group) error {
	s.g = g
	return s.startErr
}

func (s *testStore) Renew(time.Time, *limiter.Config, [2]int64) (limiter.Lease, bool) {
	return limiter.Lease{}, false
}

func (s *testStore) Close() error {
	s.closed++
	return nil
}

func TestSharedGroupInvalid(t *testing.T) {
	cfg := mustConfig(t, 300, 1200, 300, 1200, tick)
	if _, err := limiter.NewSharedGroup(cfg, nil); !errors.Is(err, limiter.ErrInvalid) {
		t.Errorf("NewSharedGroup(cfg, nil) = %v, want ErrInvalid", err)
	}
	if _, err := limiter.NewSharedGroup(nil, &testStore{}); !errors.Is(err, limiter.ErrInvalidConfig) {
		t.Errorf("NewSharedGroup(nil, s) = %v, want ErrInvalidConfig", err)
	}
	boom := errors.New("boom")
	if _, err := limiter.NewSharedGroup(cfg, &testStore{startErr: boom}); !errors.Is(err, boom) {
		t.Errorf("NewSharedGroup with a failing Start = %v, want it wrapped", err)
	}
}

// TestSharedGroupLeases checks that a shared group's bucket is only what
// the store grants: empty at first, whatever the ticks, then each lease,
// shared among members a share each, with unused bytes and debts lapsing
// at the next lease (the store settles them).
func TestSharedGroupLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testStore{}
		g, err := limiter.NewSharedGroup(mustConfig(t, 300, 1200, 300, 1200, tick), s)
		if err != nil {
			t.Fatal(err)
		}
		ms := join(t, g, 3)
		checkLimit(t, "Limit(Read) before a lease", g.Limit(limiter.Read), 0)
		done := startWait(context.Background(), ms[0], limiter.Read)
		time.Sleep(3 * tick)
		synctest.Wait()
		checkPending(t, "no lease after three ticks", done)
		if got := g.Limit(limiter.Read); got != 0 {
			t.Fatalf("Limit(Read) after three ticks without a lease = %d, want 0 (no refill of its own)", got)
		}

		g.Grant(limiter.Lease{Tick: 1, Read: 150, Write: 90})
		if err := <-done; err != nil {
			t.Fatalf("Wait after a lease = %v", err)
		}
		checkLimit(t, "Allow(Read) after a lease of 150 among 3", ms[0].Allow(limiter.Read), 64)
		ms[0].Consume(limiter.Read, 64)
		ms[1].Consume(limiter.Read, 50)
		checkLimit(t, "Limit(Write)", g.Limit(limiter.Write), 90)
		dm := g.Demand()
		if dm.Members != 3 || dm.Used != [2]int64{114, 0} || dm.Active != [2]int{2, 0} {
			t.Fatalf("Demand() = %+v, want 3 members, 114 read by 2 active", dm)
		}

		// A store takes the demand, then a byte moves before its lease
		// arrives: it counts in the next settlement, not in none.
		if dm := g.TakeDemand(); dm.Used != [2]int64{114, 0} {
			t.Fatalf("TakeDemand() = %+v, want the 114 read", dm)
		}
		ms[2].Consume(limiter.Read, 1)
		// 35 unused: it lapses, the new lease replaces it.
		g.Grant(limiter.Lease{Tick: 2, Read: 30, Write: 0})
		checkLimit(t, "Limit(Read) after a second lease", g.Limit(limiter.Read), 30)
		checkLimit(t, "Limit(Write) after an empty lease", g.Limit(limiter.Write), 0)
		if dm := g.TakeDemand(); dm.Used != [2]int64{1, 0} || dm.Active != [2]int{} {
			t.Fatalf("TakeDemand() after a lease = %+v, want the byte moved in between and nobody active", dm)
		}
		// A debt is the store's to settle (Demand counts it as used):
		// the next lease is not cut by it here as well.
		g.Decrement(limiter.Read, 100)
		if dm := g.Demand(); dm.Used[limiter.Read] != 100 {
			t.Fatalf("Demand().Used after a manual decrement of 100 = %v", dm.Used)
		}
		g.Grant(limiter.Lease{Tick: 3, Read: 300})
		checkLimit(t, "Limit(Read) after a lease following a debt of 70", g.Limit(limiter.Read), 300)
		if st := g.Stats(); st.Leases != 3 {
			t.Fatalf("Stats().Leases = %d, want 3", st.Leases)
		}
		if s.closed != 0 {
			t.Fatalf("store closed %d times before the group closed", s.closed)
		}
		for _, m := range ms {
			m.Leave()
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil || s.closed != 1 {
			t.Fatalf("second Close() = %v with the store closed %d times, want nil and once", err, s.closed)
		}
		g.Grant(limiter.Lease{Tick: 4, Read: 300})
		if st := g.Stats(); st.Leases != 3 {
			t.Fatalf("Grant on a closed group counted: %d leases", st.Leases)
		}
	})
}

// TestSharedGroupWaitersCounted checks that Demand counts queued members
// as active, and that on an in-process group Grant is a lease like the
// in-process store's own: the bucket for the rest of the tick, from which
// the next tick's refill starts.
func TestSharedGroupWaitersCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := limiter.NewSharedGroup(mustConfig(t, 300, 1200, 300, 1200, tick), &testStore{})
		if err != nil {
			t.Fatal(err)
		}
		ms := join(t, g, 2)
		ctx, cancel := context.WithCancel(context.Background())
		done := startWait(ctx, ms[1], limiter.Write)
		dm := g.Demand()
		if dm.Waiting != [2]int{0, 1} || dm.Active != [2]int{0, 1} {
			t.Fatalf("Demand() with one writer waiting = %+v", dm)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want Canceled", err)
		}

		local := mustGroup(t, mustConfig(t, 300, 1200, 300, 1200, tick))
		local.Grant(limiter.Lease{Tick: 1, Read: 5})
		checkLimit(t, "in-process group's Limit after Grant", local.Limit(limiter.Read), 5)
		checkLimit(t, "in-process group's Limit(Write) after Grant", local.Limit(limiter.Write), 0)
		time.Sleep(tick)
		checkLimit(t, "in-process group's Limit a tick after Grant", local.Limit(limiter.Read), 305)
		if local.Store() == nil {
			t.Fatal("in-process group has no store")
		}
		if err := local.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSharedGroupDecrementCounts checks that on a shared group a manual
// decrement counts as used, so the store takes it from the shared budget,
// and that AddLease adds to the lease without counting.
func TestSharedGroupDecrementCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := limiter.NewSharedGroup(mustConfig(t, 300, 1200, 300, 1200, tick), &testStore{})
		if err != nil {
			t.Fatal(err)
		}
		ms := join(t, g, 1)
		g.Grant(limiter.Lease{Tick: 1, Read: 100, Write: 100})
		g.Decrement(limiter.Read, 40)
		g.AddLease(0, 50)
		checkLimit(t, "Limit(Read) after a drain of 40", g.Limit(limiter.Read), 60)
		checkLimit(t, "Limit(Write) after a top-up of 50", g.Limit(limiter.Write), 150)
		ms[0].Consume(limiter.Write, 120)
		if dm := g.Demand(); dm.Used != [2]int64{40, 120} {
			t.Fatalf("Demand().Used = %v, want the drain and the bytes moved: [40 120]", dm.Used)
		}
	})
}

// TestSharedGroupReclaim checks that Reclaim takes back what is left of
// the lease beyond granted turns, only where nobody waits, and that it is
// not counted as used.
func TestSharedGroupReclaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, err := limiter.NewSharedGroup(mustConfig(t, 300, 1200, 300, 1200, tick), &testStore{})
		if err != nil {
			t.Fatal(err)
		}
		ms := join(t, g, 2)
		g.Grant(limiter.Lease{Tick: 1, Read: 200, Write: 0})
		ms[0].Consume(limiter.Read, 50)
		ctx, cancel := context.WithCancel(context.Background())
		done := startWait(ctx, ms[1], limiter.Write)
		if back := [2]int64{g.Reclaim(limiter.Read), g.Reclaim(limiter.Write)}; back != [2]int64{150, 0} {
			t.Fatalf("Reclaim = %v, want the 150 unused read bytes and nothing written (a writer waits)", back)
		}
		checkLimit(t, "Limit(Read) after Reclaim", g.Limit(limiter.Read), 0)
		if dm := g.Demand(); dm.Used != [2]int64{50, 0} {
			t.Fatalf("Demand().Used = %v, want only the 50 consumed", dm.Used)
		}
		cancel()
		<-done
		// On an in-process group Reclaim takes the bucket too: the next
		// tick's refill starts from nothing.
		local := mustGroup(t, mustConfig(t, 300, 1200, 300, 1200, tick))
		if back := local.Reclaim(limiter.Read); back != 300 {
			t.Fatalf("Reclaim on an in-process group = %v, want its 300", back)
		}
		time.Sleep(tick)
		checkLimit(t, "in-process Limit(Read) a tick after Reclaim", local.Limit(limiter.Read), 300)
		local.Close()
	})
}

// renewStore grants at Renew, as the in-process store does: a fixed
// lease every tick, whatever was left, and records what it was told.
type renewStore struct {
	lease limiter.Lease
	left  [][2]int64
	cfgs  []limiter.Config
}

func (s *renewStore) Start(*limiter.Group) error { return nil }
func (s *renewStore) Close() error               { return nil }

func (s *renewStore) Renew(now time.Time, cfg *limiter.Config, left [2]int64) (limiter.Lease, bool) {
	s.left = append(s.left, left)
	s.cfgs = append(s.cfgs, *cfg)
	l := s.lease
	l.Tick = now.UnixNano() / int64(cfg.Tick)
	return l, true
}

// TestSharedGroupRenew checks the other way a store grants: asked by the
// group at its start, at the first call of each later tick (once, however
// many ticks passed) and at SetConfig, told what is left, its answer is
// the bucket at once.
func TestSharedGroupRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &renewStore{lease: limiter.Lease{Read: 100, Write: 40}}
		g, err := limiter.NewSharedGroup(mustConfig(t, 300, 1200, 300, 1200, tick), s)
		if err != nil {
			t.Fatal(err)
		}
		ms := join(t, g, 2)
		checkLimit(t, "Limit(Read) at the start", g.Limit(limiter.Read), 100)
		checkLimit(t, "Allow(Read) of one of two", ms[0].Allow(limiter.Read), 64)
		ms[0].Consume(limiter.Read, 64)
		g.Decrement(limiter.Write, -5)
		time.Sleep(3 * tick)
		checkLimit(t, "Limit(Read) three ticks later", g.Limit(limiter.Read), 100)
		checkLimit(t, "Limit(Write) three ticks later", g.Limit(limiter.Write), 40)
		if want := [][2]int64{{0, 0}, {36, 45}}; len(s.left) != 2 || s.left[1] != want[1] {
			t.Fatalf("Renew told left %v, want %v", s.left, want)
		}
		ms[1].Consume(limiter.Read, 30)
		next := mustConfig(t, 600, 1200, 600, 1200, tick)
		if err := g.SetConfig(next); err != nil {
			t.Fatal(err)
		}
		if n := len(s.cfgs); n != 3 || s.cfgs[2] != *next || s.left[2] != [2]int64{70, 40} {
			t.Fatalf("SetConfig: Renew got configs %v, left %v; want the new config and [70 40] last", s.cfgs, s.left)
		}
		if st := g.Stats(); st.Leases != 3 {
			t.Fatalf("Stats().Leases = %d, want 3", st.Leases)
		}
		for _, m := range ms {
			m.Leave()
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
