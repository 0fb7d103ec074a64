package limiter_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/limiter"
)

// both limits a stream by every meter in it, as an actor with a bucket and
// a group membership does: it may move the least that any allows.
type both []limiter.Meter

func (b both) Allow(d limiter.Dir) int64 {
	n := int64(limiter.Max)
	for _, m := range b {
		n = min(n, m.Allow(d))
	}
	return n
}

// Wait waits on the first meter that says wait, bucket before group, so
// that a group turn is only asked for when the stream's own bucket has
// room for it.
func (b both) Wait(ctx context.Context, d limiter.Dir) error {
	for _, m := range b {
		if m.Allow(d) == 0 {
			return m.Wait(ctx, d)
		}
	}
	return nil
}

func (b both) Consume(d limiter.Dir, n int) {
	for _, m := range b {
		m.Consume(d, n)
	}
}

// ratelimScenario is one run of libevent's test-ratelim (section 3.3 of
// the reference), simulated: 30 streams move data as fast as their limits
// let them for 5 s of virtual time, with a 100 ms tick and every burst at
// four times its rate, as test-ratelim sets them.
type ratelimScenario struct {
	name  string
	conn  int64 // per-stream bytes per tick, 0 for none (-c)
	group int64 // group bytes per tick, 0 for none (-g)
	drain int64 // bytes drained from the group per tick (-G)
	// fromEmpty starts every bucket empty, so that all streams are
	// waiting before the first refill and 50 refills are measured, in
	// (0, 5 s]. Otherwise buckets start at their rate, as libevent's do,
	// and the run ends at 4.995 s, as test-ratelim's does.
	fromEmpty bool

	wantTotal, totalTol float64 // B/s; 0 skips the check
	wantAvg, avgTol     float64
	maxStddev           float64
}

type ratelimResult struct {
	total, avg, stddev, lo, hi float64
}

func runRatelim(t *testing.T, sc ratelimScenario, d limiter.Dir) ratelimResult {
	const (
		streams  = 30
		tk       = 100 * time.Millisecond
		duration = 5 * time.Second
	)
	var res ratelimResult
	synctest.Test(t, func(t *testing.T) {
		ms := make([]limiter.Meter, streams)
		for i := range ms {
			ms[i] = both{}
		}
		if sc.conn > 0 {
			for i := range ms {
				b := mustBucket(t, mustConfig(t, sc.conn, 4*sc.conn, sc.conn, 4*sc.conn, tk))
				if sc.fromEmpty {
					b.Decrement(limiter.Read, sc.conn)
					b.Decrement(limiter.Write, sc.conn)
				}
				ms[i] = append(ms[i].(both), b)
			}
		}
		var g *limiter.Group
		if sc.group > 0 {
			g = mustGroup(t, mustConfig(t, sc.group, 4*sc.group, sc.group, 4*sc.group, tk))
			if sc.fromEmpty {
				g.Decrement(limiter.Read, sc.group)
				g.Decrement(limiter.Write, sc.group)
			}
			for i, m := range join(t, g, streams) {
				ms[i] = append(ms[i].(both), m)
			}
		}
		end := duration - 5*time.Millisecond
		if sc.fromEmpty {
			end = duration + 5*time.Millisecond
		}
		ctx, cancel := context.WithTimeout(t.Context(), end)
		defer cancel()

		var wg sync.WaitGroup
		if sc.drain > 0 {
			wg.Go(func() {
				tkr := time.NewTicker(tk)
				defer tkr.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tkr.C:
						g.Decrement(limiter.Read, sc.drain)
						g.Decrement(limiter.Write, sc.drain)
					}
				}
			})
		}
		// Both directions run at once; d is the one measured.
		var moved []int64
		wg.Go(func() { moved = hammer(ctx, t, ms, d, 16384) })
		wg.Go(func() { hammer(ctx, t, ms, 1-d, 16384) })
		wg.Wait()

		rates := make([]float64, streams)
		res.lo = math.Inf(1)
		for i, n := range moved {
			rates[i] = float64(n) / duration.Seconds()
			res.total += rates[i]
			res.lo, res.hi = min(res.lo, rates[i]), max(res.hi, rates[i])
		}
		res.avg = res.total / streams
		for _, r := range rates {
			res.stddev += (r - res.avg) * (r - res.avg)
		}
		res.stddev = math.Sqrt(res.stddev / streams)
	})
	return res
}

func TestRatelim(t *testing.T) {
	scenarios := []ratelimScenario{
		{name: "group_lim", group: 3000, fromEmpty: true,
			wantTotal: 30000, totalTol: 0.01, maxStddev: 20},
		{name: "con_lim", conn: 100, fromEmpty: true,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},
		{name: "group_con_lim", conn: 100, group: 3000, fromEmpty: true,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},
		{name: "group_lim_drain", group: 3500, drain: 500, fromEmpty: true,
			wantTotal: 30000, totalTol: 0.01, maxStddev: 20},
		{name: "group_con_lim_drain", conn: 100, group: 3500, drain: 500, fromEmpty: true,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},

		// Started as libevent starts: buckets at their rate, the run
		// ending at 4.995 s.
		{name: "libevent_start/group_lim", group: 3000,
			wantTotal: 30000, totalTol: 0.01, maxStddev: 20},
		{name: "libevent_start/con_lim", conn: 100,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},
		{name: "libevent_start/group_con_lim", conn: 100, group: 3000,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},
		{name: "libevent_start/group_lim_drain", group: 3500, drain: 500,
			wantTotal: 30000, totalTol: 0.01, maxStddev: 20},
		{name: "libevent_start/group_con_lim_drain", conn: 100, group: 3500, drain: 500,
			wantTotal: 30000, totalTol: 0.01, wantAvg: 1000, avgTol: 0.02, maxStddev: 20},
	}
	for _, sc := range scenarios {
		for _, d := range []limiter.Dir{limiter.Read, limiter.Write} {
			t.Run(sc.name+"/"+d.String(), func(t *testing.T) {
				r := runRatelim(t, sc, d)
				t.Logf("total %.1f B/s, avg %.1f B/s, per stream [%.1f, %.1f], stddev %.2f B/s", r.total, r.avg, r.lo, r.hi, r.stddev)
				if sc.wantTotal > 0 && math.Abs(r.total-sc.wantTotal) > sc.totalTol*sc.wantTotal {
					t.Errorf("total = %.1f B/s, want %.0f ± %.0f", r.total, sc.wantTotal, sc.totalTol*sc.wantTotal)
				}
				if sc.wantAvg > 0 && math.Abs(r.avg-sc.wantAvg) > sc.avgTol*sc.wantAvg {
					t.Errorf("average = %.1f B/s, want %.0f ± %.0f", r.avg, sc.wantAvg, sc.avgTol*sc.wantAvg)
				}
				if r.stddev > sc.maxStddev {
					t.Errorf("stddev = %.2f B/s, want at most %.0f", r.stddev, sc.maxStddev)
				}
			})
		}
	}
}
