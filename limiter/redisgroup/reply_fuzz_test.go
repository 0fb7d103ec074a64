package redisgroup

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/bevgo/bev/limiter"
	"github.com/redis/go-redis/v9"
)

// FuzzParseReply feeds parseReply every shape of reply the lease script
// could be made to give (any count of any int64 values, in any mode): it
// never panics; what it refuses is an error wrapping ErrReply that says
// so once; and what it accepts keeps the loop and the budget sound: a
// time to the next tick within the tick, grants and counts that are not
// negative, and shares that, folded into the process's average
// (foldLocked) and taken for an outage (fallLocked), stay within [0, 1].
func FuzzParseReply(f *testing.F) {
	const tickUs = 100_000
	// The script's own answers: a lease, a late top-up, a first lease.
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(17_000_000), int64(600), int64(600), int64(40_000), int64(3), int64(2), int64(6000), int64(6000), int64(16_999_999), int64(500_000), int64(500_000))
	f.Add(uint8(11), uint8(modeTopUp), int64(6000), int64(6000), int64(17_000_000), int64(0), int64(0), int64(1), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeGiveBack), int64(600), int64(0), int64(5), int64(0), int64(0), int64(tickUs), int64(0), int64(1), int64(-5), int64(-5), int64(-1), int64(-1), int64(-1))
	// Malformed: short, negative grant, time beyond the tick, huge counts,
	// shares above one, a share's tick ahead of the tick.
	f.Add(uint8(3), uint8(modeLease), int64(0), int64(0), int64(1), int64(1), int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(-1), int64(0), int64(1), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(1), int64(1), int64(math.MaxInt64), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(1), int64(1), int64(0), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(1), int64(1), int64(5), int64(math.MaxInt64), int64(-1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(1), int64(1), int64(5), int64(1), int64(1), int64(0), int64(0), int64(8), int64(2_000_000), int64(-7))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(9), int64(1), int64(1), int64(5), int64(1), int64(1), int64(0), int64(0), int64(10), int64(0), int64(0))
	f.Add(uint8(11), uint8(modeTopUp), int64(10), int64(10), int64(9), int64(11), int64(0), int64(5), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(11), uint8(modeLease), int64(0), int64(0), int64(math.MinInt64), int64(1), int64(1), int64(5), int64(1), int64(1), int64(0), int64(0), int64(-1), int64(-1), int64(-1))
	f.Add(uint8(0), uint8(modeLease), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add(uint8(200), uint8(modeLease), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, n, mode uint8, a0, a1, v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10 int64) {
		vals := []int64{v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10}
		v := make([]int64, int(n))
		for i := range v {
			v[i] = vals[i%len(vals)]
		}
		m := int(mode % 3)
		tick := tickUs * time.Microsecond
		r, err := parseReply(v, tick, m, [2]int64{a0, a1})
		if err != nil {
			if !errors.Is(err, ErrReply) || strings.Count(err.Error(), "redisgroup:") != 1 {
				t.Fatalf("parseReply(%v): error %q does not wrap ErrReply once", v, err)
			}
			if r != (result{}) {
				t.Fatalf("parseReply(%v) = %+v with error %v", v, r, err)
			}
			return
		}
		if len(v) != 11 {
			t.Fatalf("parseReply accepted %d values", len(v))
		}
		if r.untilNext <= 0 || r.untilNext > tick {
			t.Fatalf("parseReply(%v): %v to the next tick of %v", v, r.untilNext, tick)
		}
		if r.tick < 0 || r.members < 0 || r.procs < 0 || r.grant[0] < 0 || r.grant[1] < 0 {
			t.Fatalf("parseReply(%v) = %+v: a negative tick, count or grant", v, r)
		}
		if m == modeTopUp && (r.grant[0] > a0 || r.grant[1] > a1) {
			t.Fatalf("parseReply(%v) = %+v: a top-up of more than %d, %d", v, r, a0, a1)
		}
		// Fold the reply into a process that had leases (last, a share)
		// and into a new one, then take the outage's share.
		for _, last := range []int64{-1, max(r.tick-3, 0), r.tick} {
			s := &Store{last: last, share: [2]float64{0.5, 1}, prev: [2]float64{0.4, 1}}
			s.foldLocked(r)
			s.fallLocked(time.Unix(0, 0), tick)
			for d := range 2 {
				for _, x := range []float64{s.share[d], s.prev[d], s.local[d]} {
					if !(x >= 0 && x <= 1) {
						t.Fatalf("after folding %+v into a store at tick %d: share %v, prev %v, local %v", r, last, s.share, s.prev, s.local)
					}
				}
			}
		}
	})
}

// TestMalformedReplyFails runs the store's lease against a Redis whose
// script answers what the lease script never does: each such reply is a
// failed call (counted in Stats.Errors, its error wrapping ErrReply in
// Stats.LastError), and the lease is the policy's, not the reply's.
// Before parseReply, a reply of 11 values was taken whatever they were: a
// negative grant became the lease and a negative time to the next tick
// the loop's wait.
func TestMalformedReplyFails(t *testing.T) {
	srv := testredis.New(t)
	cfg, err := limiter.NewConfig(6000, 6000, 6000, 6000, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	saved := leaseScript
	t.Cleanup(func() { leaseScript = saved })
	for _, reply := range []string{
		`return {1, 2, 3}`, // too short
		`return {5, -600, -600, 50000, 1, 1, 0, 0, -1, -1, -1}`,  // negative grants
		`return {5, 600, 600, -1, 1, 1, 0, 0, -1, -1, -1}`,       // negative time to the next tick
		`return {5, 600, 600, 50000, -1, 1, 0, 0, -1, -1, -1}`,   // negative members
		`return {5, 600, 600, 50000, 1, 1, 0, 0, 4, 5000000, 0}`, // a share above one
		`return 'not a list'`,
	} {
		t.Run(reply, func(t *testing.T) {
			leaseScript = redis.NewScript(reply)
			s, err := newStore(Options{URL: srv.URL(), Name: "malformed", ID: "a", Fallback: Block}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.closeClient()
			g, err := limiter.NewSharedGroup(cfg, nopStore{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			s.g = g
			m, err := g.Join()
			if err != nil {
				t.Fatal(err)
			}
			defer m.Leave()
			_, shared := s.lease(cfg, cfg.Tick)
			st := s.Stats()
			if shared || st.Errors != 1 || st.Leases != 0 {
				t.Fatalf("lease from reply %s: shared %v, stats %+v; want a failed call", reply, shared, st)
			}
			if reply != `return 'not a list'` && !strings.Contains(st.LastError, ErrReply.Error()) {
				t.Fatalf("last error %q, want one wrapping ErrReply", st.LastError)
			}
			if l := st.Last; l.Read != 0 || l.Write != 0 {
				t.Fatalf("lease %+v under Block after a failed call, want nothing", l)
			}
		})
	}
}
