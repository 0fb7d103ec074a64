package redisgroup

import (
	"context"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// clocked runs the lease script directly, as processes of one group
// with one active member each, at instants of a clock the test sets
// (the script's time argument), so that who asks in which tick is
// exactly the one written.
type clocked struct {
	t            *testing.T
	c            *redis.Client
	rate, burst  int64
	tickUs, tick int64 // the tick's length; the current tick
}

func newClocked(t *testing.T, rate, burst int64) *clocked {
	t.Helper()
	srv := testredis.New(t)
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return &clocked{t: t, c: c, rate: rate, burst: burst, tickUs: simTick.Microseconds()}
}

// run runs the script as id at 1 ms into the current tick, with its
// members having used used bytes each way since its last lease, and
// returns its grant per direction.
func (r *clocked) run(id string, mode int, used, amount int64) [2]int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := simBase.UnixMicro() + r.tick*r.tickUs + 1000
	v, err := leaseScript.Run(ctx, r.c, []string{"bev:{f}:bucket", "bev:{f}:procs"},
		id, 1, 1, 1, used, used, r.rate, r.burst, r.rate, r.burst,
		r.tickUs, expiryTicks, mode, amount, amount, now).Int64Slice()
	if err != nil {
		r.t.Fatalf("script: %v", err)
	}
	return [2]int64{v[1], v[2]}
}

// TestScriptPendingShare establishes what today's script leaves to a
// live process that has not asked in a tick (lost to Redis, alone): A
// and B, a member each, lease in ticks 1 to 3; from tick 4 only B asks,
// using all it is granted, and tops up for a whole tick's rate.
//
// Within a tick, A's share is reserved: B's lease is its own half, and
// its top-up (what is available less the shares of the weighted
// processes that have not asked) grants nothing. But only while A's
// entry lives (three ticks): from then on B is granted the whole rate.
// And with a burst above the rate, what was reserved for A and nobody
// took stays in the bucket, which grows by it each tick: B's half of
// more, over its half of the rate, before A's entry has even expired.
func TestScriptPendingShare(t *testing.T) {
	const rate = 6000
	for _, tc := range []struct {
		name  string
		burst int64
		// B's lease and top-up in ticks 4 to 8.
		lease, topUp [5]int64
	}{
		{"burst one tick", rate, [5]int64{3000, 3000, 3000, rate, rate}, [5]int64{}},
		{"burst two ticks", 2 * rate, [5]int64{3000, 4500, 5250, 11250, rate}, [5]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newClocked(t, rate, tc.burst)
			var usedA, usedB int64
			for r.tick = 1; r.tick <= 3; r.tick++ {
				usedA = r.run("A", modeLease, usedA, 0)[0]
				usedB = r.run("B", modeLease, usedB, 0)[0]
			}
			for i := range 5 {
				l := r.run("B", modeLease, usedB, 0)[0]
				up := r.run("B", modeTopUp, l, rate)[0]
				t.Logf("tick %d: B's lease %d, top-up %d", r.tick, l, up)
				if l != tc.lease[i] || up != tc.topUp[i] {
					t.Errorf("tick %d, A silent since tick 3: B's lease %d and top-up %d, want %d and %d", r.tick, l, up, tc.lease[i], tc.topUp[i])
				}
				usedB = l + up
				r.tick++
			}
		})
	}
}
