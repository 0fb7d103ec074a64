package redisgroup_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/limiter/redisgroup"
)

// outage kills srv, waits until store s has seen the outage and returns
// the server restarted on the same port, and s's failed calls when it
// came back.
func outage(t *testing.T, srv *testredis.Server, s *redisgroup.Store, during func()) (*testredis.Server, uint64) {
	t.Helper()
	// A loaded machine can delay an answer past the timeout, which
	// counts as an outage too: count from here.
	o := s.Stats().Outages
	srv.Stop()
	waitFor(t, "the store to see the outage", func() bool { return s.Stats().Outages == o+1 })
	if st := s.Stats(); st.Shared || st.Errors == 0 || st.LastError == "" {
		t.Fatalf("stats during an outage %+v: want not shared, errors counted", st)
	}
	during()
	back, err := testredis.StartOn(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Stop)
	return back, s.Stats().Errors
}

// checkRecovery waits for the store to lease from Redis again, and checks
// that the first lease it asked once Redis was back (errors: its failed
// calls then) was shared: only a call already under way as Redis
// restarted may have failed. The store asks once a tick, so that is
// within two ticks of Redis's return on a quiet machine; counted in calls
// it holds however late the machine runs them. (Counted in time, under
// load, it took 140-530 ms, up to ten ticks.) The store's calls here
// have a timeout no stall reaches (newGroupTimeout), so every failed
// call is one Redis did not answer. Counted in calls, a schedule that
// spaced its runs further apart would pass: TestRecoveryTime bounds the
// time, in virtual time.
func checkRecovery(t *testing.T, s *redisgroup.Store, errors uint64) {
	t.Helper()
	waitFor(t, "the store to recover", func() bool { st := s.Stats(); return st.Shared && st.Recoveries == st.Outages })
	st := s.Stats()
	t.Logf("%d failed calls after Redis returned", st.Errors-errors)
	if st.Errors-errors > 1 {
		t.Errorf("%d calls failed after Redis returned, want at most the one under way as it restarted: stats %+v", st.Errors-errors, st)
	}
	if st.Outages < 1 {
		t.Errorf("stats after the recovery %+v: want the outage counted", st)
	}
}

// TestOutageLocal kills Redis under a busy group with the Local policy:
// members keep moving bytes at the process's last share, then shared
// leases resume once Redis is back.
func TestOutageLocal(t *testing.T) {
	srv := testredis.New(t)
	const rate = 4000
	g, s := newGroupTimeout(t, srv, "local", rate, redisgroup.Local, recoveryTimeout)
	d := &drivers{}
	drive(t, g, 2, d)
	defer stopAndClose(t, []*drivers{d}, g)
	// Ten leases: a new process's share grows from nothing over about
	// ten ticks, and in an outage it keeps the lesser of its last two
	// (fallLocked): after three it had none, and its members waited.
	waitFor(t, "ten leases", func() bool { return s.Stats().Leases >= 10 })
	_, errs := outage(t, srv, s, func() {
		n := s.Stats().LocalLeases
		before := sum(d.snapshot())
		t0 := time.Now()
		waitFor(t, "five local leases", func() bool { return s.Stats().LocalLeases >= n+5 })
		moved := sum(d.snapshot()) - before
		ticks := time.Since(t0).Seconds() / tick.Seconds()
		// Some, if the local lease holds a min share: a share of ticks
		// the machine made the store miss (Stats.Missed) counts as
		// nothing, and under load it may fall below one.
		l := s.Stats().Last.Read
		if l <= 0 || moved > int64(ticks+2)*l || (moved == 0 && l >= limiter.DefaultMinShare) {
			t.Errorf("during the outage members moved %d bytes in %.1f ticks, want some and at most the local lease (%d/tick)", moved, ticks, l)
		}
	})
	checkRecovery(t, s, errs)
	n := s.Stats().Leases
	waitFor(t, "leases from Redis again", func() bool { return s.Stats().Leases >= n+3 })
}

// TestOutageBlock kills Redis under a group with the Block policy:
// members get nothing until Redis is back, and nobody is told of an
// error.
func TestOutageBlock(t *testing.T) {
	srv := testredis.New(t)
	g, s := newGroupTimeout(t, srv, "block", 4000, redisgroup.Block, recoveryTimeout)
	d := &drivers{}
	drive(t, g, 2, d)
	defer stopAndClose(t, []*drivers{d}, g)
	waitFor(t, "leases", func() bool { return s.Stats().Leases >= 3 })
	_, errs := outage(t, srv, s, func() {
		if moved := movedAfterLapse(t, s, d); moved != 0 {
			t.Errorf("members moved %d bytes while Redis was down under Block", moved)
		}
		if st := s.Stats(); st.LocalLeases != 0 || st.Last.Read != 0 {
			t.Errorf("stats under Block %+v: want no local leases", st)
		}
	})
	checkRecovery(t, s, errs)
	checkMovesAgain(t, s, d)
	if st := g.Stats(); st.Members != 2 {
		t.Errorf("members after the outage: %d, want 2 (none dropped)", st.Members)
	}
}

// movedAfterLapse waits for two failed ticks of s, which let the last
// lease granted before them lapse, and returns what d's members moved in
// the three failed ticks after.
func movedAfterLapse(t *testing.T, s *redisgroup.Store, d *drivers) int64 {
	t.Helper()
	n := s.Stats().Calls
	waitFor(t, "two failed ticks", func() bool { return s.Stats().Calls >= n+2 })
	before := sum(d.snapshot())
	n = s.Stats().Calls
	waitFor(t, "three more failed ticks", func() bool { return s.Stats().Calls >= n+3 })
	return sum(d.snapshot()) - before
}

// TestOutageBounded kills Redis under a busy group with the Bounded
// policy and a hold of three ticks: the store grants itself at most
// three local leases, then nothing (Stats.Fenced counts the ticks), so
// members stop moving bytes; shared leases resume once Redis is back.
func TestOutageBounded(t *testing.T) {
	srv := testredis.New(t)
	const hold = 3
	g, s, err := redisgroup.NewGroup(config(t, 4000), redisgroup.Options{URL: srv.URL(), Name: "bounded",
		Fallback: redisgroup.Bounded, Hold: hold * tick, Timeout: recoveryTimeout})
	if err != nil {
		t.Fatal(err)
	}
	d := &drivers{}
	drive(t, g, 2, d)
	defer stopAndClose(t, []*drivers{d}, g)
	waitFor(t, "ten leases", func() bool { return s.Stats().Leases >= 10 })
	_, errs := outage(t, srv, s, func() {
		waitFor(t, "a fenced tick", func() bool { return s.Stats().Fenced >= 1 })
		// The fenced tick's empty lease is granted after its count: it
		// replaces the last local lease in the lapse.
		if moved := movedAfterLapse(t, s, d); moved != 0 {
			t.Errorf("members moved %d bytes past the hold under Bounded", moved)
		}
		if st := s.Stats(); st.LocalLeases > hold || st.Fenced < 5 || st.Last.Read != 0 {
			t.Errorf("stats past the hold %+v: want at most %d local leases, then fenced ticks with empty leases", st, hold)
		}
	})
	checkRecovery(t, s, errs)
	checkMovesAgain(t, s, d)
}

// checkMovesAgain waits for three leases of s from Redis, and fails t if
// d's members moved nothing meanwhile.
func checkMovesAgain(t *testing.T, s *redisgroup.Store, d *drivers) {
	t.Helper()
	before := sum(d.snapshot())
	n := s.Stats().Leases
	waitFor(t, "leases from Redis again", func() bool { return s.Stats().Leases >= n+3 })
	if sum(d.snapshot()) == before {
		t.Error("members moved nothing after Redis came back")
	}
}

func sum(v []int64) int64 {
	var n int64
	for _, x := range v {
		n += x
	}
	return n
}

// TestCloseDuringOutage closes a group while Redis is down: Close returns
// and the client leaves no goroutine behind (TestMain's goleak).
func TestCloseDuringOutage(t *testing.T) {
	srv := testredis.New(t)
	g, s := newGroup(t, srv, "closing", 4000, redisgroup.Local)
	waitFor(t, "leases", func() bool { return s.Stats().Leases >= 2 })
	srv.Stop()
	waitFor(t, "a few failed ticks", func() bool { return s.Stats().Errors >= 3 })
	if err := g.Close(); err != nil {
		t.Fatalf("Close during an outage = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// TestOutageLocalBound kills Redis under two busy processes (stores) of
// one group: under Local each keeps its share of the last ticks, so
// together they stay within the budget during the outage, use most of
// it, and each gets its share by member.
//
// Most of it only when the machine let each store ask in every tick
// before the outage and see the outage at the next one: a tick a store
// had no lease in counts in its share as granting nothing (Stats.Missed;
// see Local), so that the shares of all processes add up to at most
// one. At nice 12 beside three busy loops, 2 runs of 6 fell back to 82
// and 85 % of the budget so. Such a run is played again, up to
// outageAttempts runs; the last is judged whatever happened in it, by
// what its misses allow (each costs at most a fifth of what is left),
// and its bytes by the local leases. The budget's bound is checked in
// every run.
func TestOutageLocalBound(t *testing.T) {
	for attempt := 1; ; attempt++ {
		last := attempt == outageAttempts
		why := outageLocalBound(t, last)
		if why == "" || last {
			return
		}
		t.Logf("run %d disturbed (%s): playing it again", attempt, why)
	}
}

// outageAttempts is how many runs TestOutageLocalBound plays at most.
const outageAttempts = 3

// outageLocalBound is a run of TestOutageLocalBound. It returns why the
// run was disturbed ("" if it was not), in which case it checks that
// the processes stayed within the budget, and the rest only if judge.
func outageLocalBound(t *testing.T, judge bool) string {
	srv := testredis.New(t)
	const rate = 6000
	ga, sa := newGroup(t, srv, "bound", rate, redisgroup.Local)
	gb, sb := newGroup(t, srv, "bound", rate, redisgroup.Local)
	da, db := &drivers{}, &drivers{}
	drive(t, ga, 1, da)
	drive(t, gb, 2, db)
	defer stopAndClose(t, []*drivers{da, db}, ga, gb)
	// Twenty leases: the moving average of the shares forgets the first
	// ticks, in which A, made first, was alone. Ticks missed in the last
	// ten of them, or at the outage, weigh on the shares.
	waitFor(t, "ten shared leases", func() bool { return sa.Stats().Leases >= 10 && sb.Stats().Leases >= 10 })
	ma, mb := sa.Stats().Missed, sb.Stats().Missed
	waitFor(t, "twenty shared leases", func() bool { return sa.Stats().Leases >= 20 && sb.Stats().Leases >= 20 })
	srv.Stop()
	waitFor(t, "both stores to see the outage", func() bool { return !sa.Stats().Shared && !sb.Stats().Shared })
	a0, b0 := sum(da.snapshot()), sum(db.snapshot())
	n := sa.Stats().LocalLeases
	t0 := time.Now()
	waitFor(t, "ten local leases", func() bool { return sa.Stats().LocalLeases >= n+10 })
	a, b := sum(da.snapshot())-a0, sum(db.snapshot())-b0
	ticks := time.Since(t0).Seconds() / tick.Seconds()
	sta, stb := sa.Stats(), sb.Stats()
	la, lb := sta.Last.Read, stb.Last.Read
	t.Logf("outage: %.1f ticks, A (1 member) %d bytes, B (2 members) %d bytes; local leases A %d, B %d; ticks missed A %d, B %d",
		ticks, a, b, la, lb, sta.Missed-ma, stb.Missed-mb)
	if limit := maxBytes(ticks, rate); a+b > limit {
		t.Errorf("during the outage the two moved %d bytes in %.1f ticks, over the budget's %d", a+b, ticks, limit)
	}
	if la+lb > rate {
		t.Errorf("local leases during the outage: A %d, B %d, together %d: over the budget (%d)", la, lb, la+lb, rate)
	}
	missed := max(sta.Missed-ma, stb.Missed-mb)
	why := ""
	if missed > 0 {
		why = fmt.Sprintf("ticks missed: A %d, B %d", sta.Missed-ma, stb.Missed-mb)
	}
	if why != "" && !judge {
		return why
	}
	// Both busy: their local leases add up to about the budget, less a
	// fifth for each tick missed.
	if low := 0.9 * math.Pow(0.8, float64(missed)) * rate; float64(la+lb) < low {
		t.Errorf("local leases during the outage: A %d, B %d, together %d: want %.0f-100%% of the budget (%d), %d ticks missed", la, lb, la+lb, 100*low/rate, rate, missed)
	}
	// B, with 2 of 3 members, moves about two thirds of the bytes; after
	// misses, its part of the local leases, if each lease holds a few
	// min shares (members wait while the bucket is under one: see
	// limiter.Member.Allow).
	want := 2.0 / 3
	if missed > 0 {
		want = float64(lb) / float64(la+lb)
	}
	if r := float64(b) / float64(a+b); (missed == 0 || min(la, lb) >= 4*limiter.DefaultMinShare) && (r < want-0.12 || r > want+0.12) {
		t.Errorf("during the outage B, with 2 of 3 members, moved %.2f of the bytes, want %.2f", r, want)
	}
	return why
}

// TestOutageLocalShareGranted: a process whose one member moves a tenth
// of the budget per tick is still granted all of it, alone in the group;
// under Local it keeps that share, what Redis granted it, not what it
// used. (By use, a process that used less than it was granted, held
// back by a loaded machine or, before TestLateTopUp's fix, charged
// twice, fell back to less; on a loaded machine redisbench.sh's fault
// scenario once read 66.7 % of the budget for three busy processes.)
func TestOutageLocalShareGranted(t *testing.T) {
	srv := testredis.New(t)
	const rate = 4000
	g, s := newGroup(t, srv, "granted", rate, redisgroup.Local)
	m, err := g.Join()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		// A tenth of the rate per tick, in four steps paced by a ticker
		// (so that every lease sees some), waiting for a turn when there
		// is none, so that the member counts as active.
		defer close(done)
		tk := time.NewTicker(tick / 4)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			if err := m.Wait(ctx, limiter.Read); err != nil {
				return
			}
			if n := m.Allow(limiter.Read); n > 0 {
				m.Consume(limiter.Read, int(min(n, rate/40)))
			}
		}
	}()
	defer func() {
		cancel()
		<-done
		m.Leave()
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "ten shared leases", func() bool { return s.Stats().Leases >= 10 })
	m0 := s.Stats().Missed
	waitFor(t, "twenty shared leases", func() bool { return s.Stats().Leases >= 20 })
	srv.Stop()
	waitFor(t, "a local lease", func() bool { return s.Stats().LocalLeases >= 1 })
	// Not all of it: on a loaded machine the member may not have moved
	// a byte by 40 % of a tick, and the store then gives the rest of
	// that tick back; and each tick the machine made the store miss
	// counts as granting nothing, a fifth less. By use it would be a
	// tenth.
	st := s.Stats()
	if low := float64(rate) / 2 * math.Pow(0.8, float64(st.Missed-m0)); float64(st.Last.Read) < low {
		t.Errorf("local lease %+v of a process granted the whole budget (%d), %d ticks missed: want at least %.0f, not the tenth it used", st.Last, rate, st.Missed-m0, low)
	}
}
