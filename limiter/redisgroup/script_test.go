package redisgroup

import (
	"context"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/redis/go-redis/v9"
)

// scriptRun runs the lease script as process id with the test's config
// and returns {tick, read grant, write grant}.
type scriptRun struct {
	t      *testing.T
	c      *redis.Client
	tickUs int64
	rate   int64
}

func (r *scriptRun) run(id string, mode int, used, amount int64) [3]int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := leaseScript.Run(ctx, r.c, []string{"bev:{s}:bucket", "bev:{s}:procs"},
		id, 1, 1, 1, used, used, r.rate, 4*r.rate, r.rate, 4*r.rate,
		r.tickUs, expiryTicks, mode, amount, amount, 0, 0).Int64Slice()
	if err != nil {
		r.t.Fatalf("script: %v", err)
	}
	return [3]int64{v[0], v[1], v[2]}
}

// nextTick waits, by Redis's clock, until the tick after tick has begun,
// polling TIME for up to two seconds.
func (r *scriptRun) nextTick(tick int64) {
	r.t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		now, err := r.c.Time(context.Background()).Result()
		if err != nil {
			r.t.Fatal(err)
		}
		if now.UnixMicro()/r.tickUs > tick {
			return
		}
	}
	r.t.Fatalf("Redis's clock did not pass tick %d", tick)
}

// TestLateTopUp: a top-up (or give-back) that reaches Redis after the
// tick it was meant for has ended changes nothing and grants nothing.
// It used to run as the new tick's lease: it settled the bytes used,
// which the real lease that follows reports again (Demand, not
// TakeDemand), and its grant, added to the old lease, was replaced by
// that lease's: on a loaded machine, a tick's budget lost each time.
func TestLateTopUp(t *testing.T) {
	srv := testredis.New(t)
	opts, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	r := &scriptRun{t: t, c: c, tickUs: 50000, rate: 1000}

	first := r.run("a", modeLease, 0, 0) // the bucket starts empty
	r.nextTick(first[0])
	// One refill per tick since the first lease: one, unless the machine
	// held this call back past the next boundary (seen under load: 2000,
	// two ticks after). Redis's tick numbers say how many there were.
	l := r.run("a", modeLease, 0, 0)
	if want := min((l[0]-first[0])*r.rate, 4*r.rate); l[1] != want || l[2] != want {
		t.Fatalf("lease %d ticks after the first = %v, want %d each way", l[0]-first[0], l, want)
	}
	// Members use the whole lease (used: l[1], not the rate, which the
	// lease exceeds after a stall: the rest would come back as unused);
	// the top-up meant for this tick comes late.
	used := l[1]
	r.nextTick(l[0])
	if up := r.run("a", modeTopUp, used, r.rate); up[1] != 0 || up[2] != 0 {
		t.Errorf("late top-up granted %v, want nothing", up)
	}
	if back := r.run("a", modeGiveBack, used, r.rate); back[1] != 0 || back[2] != 0 {
		t.Errorf("late give-back granted %v, want nothing", back)
	}
	// The tick's lease settles the bytes used once and grants the
	// refills since the last lease (one, unless the machine stalled),
	// up to the burst.
	next := r.run("a", modeLease, used, 0)
	want := min((next[0]-l[0])*r.rate, 4*r.rate)
	if next[1] != want || next[2] != want {
		t.Errorf("lease %d ticks after the last, after a late top-up and give-back = %v, want %d each way", next[0]-l[0], next, want)
	}
}
