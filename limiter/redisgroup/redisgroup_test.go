package redisgroup_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/limiter/redisgroup"
)

const tick = 50 * time.Millisecond

func config(t *testing.T, rate int64) *limiter.Config {
	t.Helper()
	cfg, err := limiter.NewConfig(rate, rate, rate, rate, tick)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newGroup(t *testing.T, srv *testredis.Server, name string, rate int64, p redisgroup.Policy) (*limiter.Group, *redisgroup.Store) {
	t.Helper()
	return newGroupTimeout(t, srv, name, rate, p, 0)
}

// recoveryTimeout bounds the calls of the stores whose failed calls a
// test counts: far above any stall seen (0.7 s), so that a call fails
// only when Redis does not answer, and far below waitFor's bound.
const recoveryTimeout = 3 * time.Second

// newGroupTimeout is newGroup with Options.Timeout set to timeout (0: the
// default).
func newGroupTimeout(t *testing.T, srv *testredis.Server, name string, rate int64, p redisgroup.Policy, timeout time.Duration) (*limiter.Group, *redisgroup.Store) {
	t.Helper()
	g, s, err := redisgroup.NewGroup(config(t, rate), redisgroup.Options{URL: srv.URL(), Name: name, Fallback: p, Timeout: timeout})
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	return g, s
}

func TestNewUnreachable(t *testing.T) {
	srv := testredis.New(t)
	url := srv.URL()
	srv.Stop() // nobody listens there now
	withPass := strings.Replace(url, "redis://", "redis://bev:secret@", 1)
	_, _, err := redisgroup.NewGroup(config(t, 100), redisgroup.Options{URL: withPass, Name: "g", Timeout: time.Second})
	if !errors.Is(err, redisgroup.ErrUnreachable) {
		t.Fatalf("NewGroup with Redis down = %v, want ErrUnreachable", err)
	}
	host := strings.TrimPrefix(url, "redis://")
	if !strings.Contains(err.Error(), host) || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %q should name %s and hide the password", err, host)
	}
}

func TestNewInvalid(t *testing.T) {
	for _, o := range []redisgroup.Options{
		{URL: "redis://127.0.0.1:1", Name: ""},
		{URL: "http://127.0.0.1:1", Name: "g"},
		{URL: "redis://127.0.0.1:1", Name: "g", Fallback: 7},
		{URL: "redis://127.0.0.1:1", Name: "g", Fallback: redisgroup.Bounded, Hold: -time.Second},
	} {
		if _, err := redisgroup.New(o); !errors.Is(err, redisgroup.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	for _, name := range []string{"sometimes", "", "Bounded", "fence"} {
		if _, err := redisgroup.ParsePolicy(name); !errors.Is(err, redisgroup.ErrInvalid) {
			t.Errorf("ParsePolicy(%q) = %v, want ErrInvalid", name, err)
		}
	}
	for _, p := range []redisgroup.Policy{redisgroup.Local, redisgroup.Block, redisgroup.Bounded} {
		if got, err := redisgroup.ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p, got, err)
		}
	}
	if _, _, err := redisgroup.NewGroup(nil, redisgroup.Options{URL: "redis://127.0.0.1:1", Name: "g"}); !errors.Is(err, limiter.ErrInvalidConfig) {
		t.Errorf("NewGroup(nil config) = %v, want ErrInvalidConfig", err)
	}
}

// drivers are members reading from a group as fast as it lets them.
type drivers struct {
	wg  sync.WaitGroup
	got []*atomic.Int64
	ms  []*limiter.Member
}

func drive(t *testing.T, g *limiter.Group, n int, d *drivers) {
	t.Helper()
	ctx := context.Background()
	for range n {
		m, err := g.Join()
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int64
		d.got = append(d.got, &got)
		d.ms = append(d.ms, m)
		d.wg.Go(func() {
			for {
				n := m.Allow(limiter.Read)
				if n == 0 {
					if err := m.Wait(ctx, limiter.Read); err != nil {
						return
					}
					continue
				}
				if n == limiter.Max {
					return // left
				}
				n = min(n, 1024)
				m.Consume(limiter.Read, int(n))
				got.Add(n)
			}
		})
	}
}

func (d *drivers) stop() {
	for _, m := range d.ms {
		m.Leave()
	}
	d.wg.Wait()
}

// stopAndClose stops the members of ds, then closes gs (a group closes
// after its last member left), reporting a close's error.
func stopAndClose(t *testing.T, ds []*drivers, gs ...*limiter.Group) {
	t.Helper()
	for _, d := range ds {
		d.stop()
	}
	for _, g := range gs {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	}
}

func (d *drivers) snapshot() []int64 {
	out := make([]int64, len(d.got))
	for i, g := range d.got {
		out[i] = g.Load()
	}
	return out
}

// TestSharedFairByMember runs two stores (two processes' worth) on one
// group in one Redis, one member in the first and three in the second,
// and checks over twenty ticks that together they never move more than
// the budget allows, that they use most of it, and that each member gets
// about a quarter.
func TestSharedFairByMember(t *testing.T) {
	srv := testredis.New(t)
	const rate = 8000
	ga, sa := newGroup(t, srv, "fair", rate, redisgroup.Local)
	gb, sb := newGroup(t, srv, "fair", rate, redisgroup.Local)
	d := &drivers{}
	drive(t, ga, 1, d)
	drive(t, gb, 3, d)
	defer stopAndClose(t, []*drivers{d}, ga, gb)
	waitFor(t, "both stores to see 4 members", func() bool {
		return sa.Stats().MembersTotal == 4 && sb.Stats().MembersTotal == 4
	})
	w := measure(t, d, sa, sb)
	var total int64
	for _, n := range w.moved {
		total += n
	}
	t.Logf("%.1f ticks: %d bytes, members %v", w.ticks, total, w.moved)
	// Never more than the budget: whole ticks crossed plus one bucket.
	if limit := maxBytes(w.ticks, rate) + rate; total > limit {
		t.Errorf("moved %d bytes in %.1f ticks, more than the budget's %d", total, w.ticks, limit)
	}
	// 70% is a floor that only a group that does not share its budget
	// misses (in a window the machine did not disturb; see measure).
	if low := int64(0.7 * w.ticks * rate); total < low {
		t.Errorf("moved %d bytes in %.1f ticks, under 70%% of the budget (%d)", total, w.ticks, low)
	}
	for i, n := range w.moved {
		if share := float64(n) / float64(total); share < 0.25*0.8 || share > 0.25*1.2 {
			t.Errorf("member %d moved %d of %d bytes (%.3f), want a quarter ±20%%: %v", i, n, total, share, w.moved)
		}
	}
	if st := sa.Stats(); st.Processes != 2 || st.Leases < 15 {
		t.Errorf("store A stats %+v: want 2 processes, a lease per tick", st)
	}
}

// window is what measure saw: the bytes each driver moved and the
// window's length in ticks.
type window struct {
	moved []int64
	ticks float64
}

// windowAttempts is how many twenty-tick windows measure tries.
const windowAttempts = 4

// measure returns what the members of d moved over twenty ticks (by the
// test's clock) in which each of stores had its lease from Redis every
// tick and none came late (Stats.Late: over a quarter of a tick after
// its tick began). A loaded machine that holds a store's lease back
// holds the members' turns back too: the window's budget is then not
// what the members could use, and their shares reflect who the machine
// ran, not the group. Such a window is measured again, up to
// windowAttempts windows; after that the last one is returned, and the
// caller's checks say whether its figures held. (At nice 19 beside four
// busy loops, every window lost leases and moved 30-50 % of the budget.)
func measure(t *testing.T, d *drivers, stores ...*redisgroup.Store) window {
	t.Helper()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	<-ticker.C
	var w window
	for attempt := 1; ; attempt++ {
		t0, before := time.Now(), d.snapshot()
		stats := make([]redisgroup.Stats, len(stores))
		for i, s := range stores {
			stats[i] = s.Stats()
		}
		for range 20 {
			<-ticker.C
		}
		after := d.snapshot()
		w.ticks = time.Since(t0).Seconds() / tick.Seconds()
		w.moved = after
		for i := range after {
			w.moved[i] -= before[i]
		}
		var why []string
		for i, s := range stores {
			st := s.Stats()
			if late := st.Late - stats[i].Late; late > 0 {
				why = append(why, fmt.Sprintf("store %d: %d leases late", i, late))
			}
			// Twenty ticks by the test's clock cross at least nineteen
			// boundaries, even when it runs late.
			if leases := st.Leases - stats[i].Leases; leases < 19 {
				why = append(why, fmt.Sprintf("store %d: %d leases in %.1f ticks", i, leases, w.ticks))
			}
		}
		if len(why) == 0 || attempt == windowAttempts {
			return w
		}
		t.Logf("window %d disturbed (%s): measuring again", attempt, strings.Join(why, ", "))
	}
}

// waitFor polls cond once a tick for up to 100 ticks.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ticker := time.NewTicker(tick / 5)
	defer ticker.Stop()
	for range 500 {
		if cond() {
			return
		}
		<-ticker.C
	}
	t.Fatalf("timed out waiting for %s", what)
}

// maxBytes is the most a budget of rate bytes per tick lets through in a
// window of ticks ticks measured on this process's clock: the bucket full
// at the window's start and one lease at each tick boundary inside it,
// which a window of 19.99 ticks may cross 20 times.
func maxBytes(ticks float64, rate int64) int64 {
	return int64(math.Ceil(ticks)+1) * rate
}

// TestIdleProcessYields runs a process whose three members idle beside one
// with a single busy member: the idle process weighs nothing, so the busy
// member gets nearly the whole budget.
func TestIdleProcessYields(t *testing.T) {
	srv := testredis.New(t)
	const rate = 8000
	ga, sa := newGroup(t, srv, "idle", rate, redisgroup.Local)
	gb, sb := newGroup(t, srv, "idle", rate, redisgroup.Local)
	var idle []*limiter.Member
	for range 3 {
		m, err := ga.Join()
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, m)
	}
	d := &drivers{}
	drive(t, gb, 1, d)
	defer func() {
		for _, m := range idle {
			m.Leave()
		}
		stopAndClose(t, []*drivers{d}, ga, gb)
	}()
	waitFor(t, "both stores to see 4 members", func() bool { return sa.Stats().MembersTotal == 4 })
	w := measure(t, d, sa, sb)
	got := sum(w.moved)
	t.Logf("%.1f ticks: the busy member moved %d bytes", w.ticks, got)
	if limit := maxBytes(w.ticks, rate); got > limit {
		t.Errorf("the busy member moved %d bytes in %.1f ticks, over the budget (%d)", got, w.ticks, limit)
	}
	// With the idle process weighing as its three members, the busy one
	// would get a quarter: 70 %, as in TestSharedFairByMember.
	if low := int64(0.7 * w.ticks * rate); got < low {
		t.Errorf("the busy member moved %d bytes in %.1f ticks, under 70%% of the budget (%d): the idle process kept its share", got, w.ticks, low)
	}
}

// TestRediss runs a group on a Redis that speaks only TLS, through a
// rediss:// URL: with a configuration trusting its certificate the group
// gets leases; with the system's roots it fails, naming the URL.
func TestRediss(t *testing.T) {
	srv, cert := testredis.NewTLS(t)
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("URL %q", srv.URL())
	}
	_, client := cert.Configs()
	client.ServerName = "127.0.0.1"
	g, s, err := redisgroup.NewGroup(config(t, 1000), redisgroup.Options{URL: srv.URL(), Name: "tls", TLS: client})
	if err != nil {
		t.Fatalf("NewGroup over TLS: %v", err)
	}
	waitFor(t, "leases over TLS", func() bool { return s.Stats().Leases >= 3 })
	if st := s.Stats(); st.Errors != 0 {
		t.Errorf("stats over TLS %+v: want no errors", st)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = redisgroup.NewGroup(config(t, 1000), redisgroup.Options{URL: srv.URL(), Name: "tls"})
	if !errors.Is(err, redisgroup.ErrUnreachable) || !strings.Contains(err.Error(), srv.URL()) {
		t.Errorf("NewGroup over TLS without trusting the certificate = %v, want ErrUnreachable naming %s", err, srv.URL())
	}
}

// TestFirstLeaseAtStart: the group's first lease is asked before NewGroup
// returns, so the group's bucket in Redis counts from the tick the group
// was made in, not from whenever the store's goroutine first runs.
func TestFirstLeaseAtStart(t *testing.T) {
	srv := testredis.New(t)
	g, s := newGroup(t, srv, "first", 1000, redisgroup.Local)
	st := s.Stats()
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Calls < 1 || st.Leases < 1 {
		t.Errorf("stats as NewGroup returned %+v: want the first lease asked", st)
	}
}
