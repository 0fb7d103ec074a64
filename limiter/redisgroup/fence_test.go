package redisgroup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/bevgo/bev/limiter"
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
	// hold and expiry are what each process registers; 0 expiry:
	// expiryTicks. late is how far into a tick each process asks, 0:
	// 1 ms.
	hold, late map[string]int64
	expiry     int64
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
	return &clocked{t: t, c: c, rate: rate, burst: burst, tickUs: simTick.Microseconds(), hold: map[string]int64{}, late: map[string]int64{}}
}

// run runs the script as id at r.late[id] into the current tick, with its
// members having used used bytes each way since its last lease, and
// returns its grant per direction.
func (r *clocked) run(id string, mode int, used, amount int64) [2]int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	late := r.late[id]
	if late == 0 {
		late = 1000
	}
	now := simBase.UnixMicro() + r.tick*r.tickUs + late
	expiry := r.expiry
	if expiry == 0 {
		expiry = expiryTicks
	}
	h := r.hold[id]
	v, err := leaseScript.Run(ctx, r.c, []string{"bev:{f}:bucket", "bev:{f}:procs"},
		id, 1, 1, 1, used, used, r.rate, r.burst, r.rate, r.burst,
		r.tickUs, expiry, mode, amount, amount, h, h, now).Int64Slice()
	if err != nil {
		r.t.Fatalf("script: %v", err)
	}
	return [2]int64{v[1], v[2]}
}

// TestScriptPendingShare establishes what the script leaves to a live
// process that has not asked in a tick (lost to Redis, alone): A and B,
// a member each, lease in ticks 1 to 3 (A at 1 ms into each, B at 5);
// from tick 4 only B asks, using all it is granted, and tops up for a
// whole tick's rate.
//
// Without a hold (Local, Block), within a tick, A's share is reserved:
// B's lease is its own half, and its top-up (what is available less the
// shares of the weighted processes that have not asked) grants nothing.
// But only while A's entry lives (three ticks from its last run, which
// end before B asks in tick 6): from then on B is granted the whole
// rate. And with a burst above the rate, what was
// reserved for A and nobody took stays in the bucket, which grows by it
// each tick: B's half of more, over its half of the rate, before A's
// entry has even expired.
//
// With a hold (Bounded: here half the rate, A's share) and an expiry of
// eight ticks, B is granted its half and no top-up for as long, with
// either burst: A's hold comes off the bucket at the end of each tick
// it did not ask in. Then the whole rate. (The eighth tick begins before
// A's entry expires, 1 ms into it, and B asks after that: A's hold is
// kept to the tick's end.)
func TestScriptPendingShare(t *testing.T) {
	const rate = 6000
	for _, tc := range []struct {
		name         string
		burst, hold  int64
		expiry       int64
		lease, topUp [10]int64 // B's in ticks 4 to 13
	}{
		{"burst one tick", rate, 0, 0, [10]int64{3000, 3000, rate, rate, rate, rate, rate, rate, rate, rate}, [10]int64{}},
		{"burst two ticks", 2 * rate, 0, 0, [10]int64{3000, 4500, 10500, rate, rate, rate, rate, rate, rate, rate}, [10]int64{}},
		{"held, burst one tick", rate, rate / 2, 8, [10]int64{3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, rate, rate}, [10]int64{}},
		{"held, burst two ticks", 2 * rate, rate / 2, 8, [10]int64{3000, 3000, 3000, 3000, 3000, 3000, 3000, 3000, rate, rate}, [10]int64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newClocked(t, rate, tc.burst)
			r.hold["A"], r.expiry = tc.hold, tc.expiry
			r.late["B"] = 5000
			var usedA, usedB int64
			for r.tick = 1; r.tick <= 3; r.tick++ {
				usedA = r.run("A", modeLease, usedA, 0)[0]
				usedB = r.run("B", modeLease, usedB, 0)[0]
			}
			for i := range tc.lease {
				l := r.run("B", modeLease, usedB, 0)[0]
				up := r.run("B", modeTopUp, l, rate)[0]
				if l != tc.lease[i] || up != tc.topUp[i] {
					t.Errorf("tick %d, A silent since tick 3: B's lease %d and top-up %d, want %d and %d", r.tick, l, up, tc.lease[i], tc.topUp[i])
				}
				usedB = l + up
				r.tick++
			}
		})
	}
}

// errCut is the dial error of a cut cutter.
var errCut = errors.New("cutter: network to Redis cut")

// cutter is one process's network to the real Redis: it dials it over
// TCP and, cut, closes the connections it made and refuses new dials,
// as a partition that leaves the other processes their Redis.
type cutter struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return nil, errCut
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err == nil {
		c.conns = append(c.conns, conn)
	}
	return conn, err
}

// set cuts the network (true) or restores it.
func (c *cutter) set(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, conn := range c.conns {
			conn.Close()
		}
		c.conns = nil
	}
}

// isCut reports whether c is cut; a nil cutter never is.
func (c *cutter) isCut() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

// topUp has the processes named ask, at 60 % of the current tick (the
// clock is moved there), for a top-up of a whole tick's rate each way,
// as members that wait would, and their members use all of it. It
// returns the read bytes granted.
func (m *sim) topUp(ids ...string) int64 {
	m.t.Helper()
	m.clock = m.clock.Truncate(simTick).Add(simTick * 6 / 10)
	var got int64
	for _, id := range ids {
		p := m.procs[id]
		r, err := p.s.run(m.cfg, simTick, p.g.Demand(), modeTopUp, [2]int64{simRate, simRate})
		if err != nil {
			m.t.Fatalf("%s: top-up: %v", id, err)
		}
		p.g.AddLease(r.grant[0], r.grant[1])
		p.consume(r.grant, 0)
		got += r.grant[0]
	}
	return got
}

// TestLonePartition cuts one process of three (A, two members) off from
// Redis while the others (B and C, a member each) keep it, all busy and
// using all they are granted, and each that has Redis asking for a top-up
// in every tick; two more members join C two ticks into the partition, so
// that A's share by weight falls below what it grants itself. Through the
// partition, past the expiry of A's entry in Redis, and after A is back,
// the group's grants (Redis's leases and top-ups, and A's local leases)
// must stay within the group's budget: a token bucket of the group's rate
// and burst, which starts empty with the group, followed tick by tick on
// what was granted. Under Bounded, A grants itself its share, as under
// Local, for its hold's L ticks, then nothing, and leases from Redis
// again when it is back. The same schedule under Local passes the budget,
// which the test checks too: A keeps its share while Redis gives B and C
// theirs, and then A's too. A short partition (three ticks, within A's
// hold) checks A's return while the bucket is tight: the lease A settles
// then must not give back what it left.
func TestLonePartition(t *testing.T) {
	const hold = 5                 // ticks
	localA := map[string][]int64{} // A's local leases under Local, by burst and length
	for _, short := range []bool{false, true} {
		for _, tc := range []struct {
			policy Policy
			burst  int64
		}{{Local, simRate}, {Local, 2 * simRate}, {Bounded, simRate}, {Bounded, 2 * simRate}} {
			name := fmt.Sprintf("burst %d/short %v", tc.burst, short)
			t.Run(fmt.Sprintf("%v/%s", tc.policy, name), func(t *testing.T) {
				lonePartition(t, tc.policy, tc.burst, hold, short, localA, name)
			})
		}
	}
}

// lonePartition is a run of TestLonePartition, with A's hold in ticks;
// localA has A's local leases under Local by name, which the run adds
// them to under Local and compares them with under Bounded.
func lonePartition(t *testing.T, policy Policy, burst int64, hold int, short bool, localA map[string][]int64, name string) {
	tc := struct {
		policy Policy
		burst  int64
	}{policy, burst}
	m := newSimBurst(t, tc.burst)
	m.policy, m.hold = tc.policy, time.Duration(hold)*simTick
	a := m.joinCut("A", 2)
	m.join("B", 1)
	m.join("C", 1)
	for _, p := range m.procs {
		p.use = 1
	}
	// The partition outlasts A's entry by three ticks, or is
	// three ticks long.
	cutAt := 30
	backAt := cutAt + int(a.s.expiry(simTick)) + 3
	if short {
		backAt = cutAt + 3
	}
	end := backAt + 10
	level := int64(0) // the group's bucket, made empty in tick 1
	worst, over := level, 0
	var locals []int64
	var others int64 // B's and C's grants in the partition's last tick
	for k := 1; k <= end; k++ {
		m.at(k)
		switch k {
		case cutAt:
			a.cut.set(true)
		case cutAt + 2:
			m.procs["C"].add(2)
		case backAt:
			a.cut.set(false)
		}
		m.lease("A", "B", "C")
		ups := []string{"B", "C"}
		if !a.cut.isCut() {
			ups = []string{"A", "B", "C"}
		}
		granted := m.topUp(ups...)
		for _, p := range m.procs {
			granted += p.s.Stats().Last.Read
		}
		if k > 1 {
			level = min(level+simRate, tc.burst)
		}
		level -= granted
		worst = min(worst, level)
		if level < 0 {
			over++
		}
		if k >= cutAt && k < backAt {
			locals = append(locals, a.s.Stats().Last.Read)
		}
		if k == backAt-1 {
			others = granted - a.s.Stats().Last.Read
		}
		if level < 0 && tc.policy == Bounded {
			t.Errorf("tick %d (A cut off in ticks %d-%d): %d B granted, the budget's bucket %d", k, cutAt, backAt-1, granted, level)
		}
	}
	st := a.s.Stats()
	t.Logf("A's local read leases %v...; B's and C's grants in the partition's last tick %d; the bucket at its lowest %d, below 0 in %d ticks; A's stats %+v",
		locals[:min(len(locals), hold+3)], others, worst, over, st)
	if tc.policy == Local {
		if over == 0 {
			t.Errorf("under Local the partition stayed within the budget (lowest %d): the schedule cannot show an overshoot", worst)
		}
		localA[name] = locals
		return
	}
	want := localA[name]
	// A grants itself in the first L ticks what Local does (about
	// half the rate: it had half the group's members for thirty
	// ticks), then nothing.
	for i, n := range locals {
		if i < hold && (n < simRate/3 || i >= len(want) || n != want[i]) || i >= hold && n != 0 {
			t.Errorf("A's local read leases in the partition %v: want the first %d as under Local (%v), then 0", locals, hold, want)
			break
		}
	}
	n := min(len(locals), hold)
	if st.LocalLeases != uint64(n) || st.Fenced != uint64(len(locals)-n) {
		t.Errorf("A's stats %+v: want %d local leases and %d fenced", st, n, len(locals)-n)
	}
	// Once A's entry has expired, B and C share the whole rate.
	if !short && others != simRate {
		t.Errorf("B's and C's grants in the partition's last tick, A's entry expired: %d, want the rate %d", others, simRate)
	}
	// Back, A leases its share (2000 B: two of six members) from Redis
	// again (m.lease checked each came from Redis), or most of it:
	// B's and C's holds, above their shares since A was gone, keep
	// some of it from A's lease when it asks first (see the script).
	if !st.Shared || st.Recoveries != 1 || st.Last.Read < simRate/4 || st.Last.Read > simRate/3 {
		t.Errorf("A's stats ten ticks after Redis came back %+v: want shared leases of nearly a third of the rate", st)
	}
}

// boundedPair joins, under Bounded, process A, which the test can cut
// off from Redis, and B, one member each, and plays 20 ticks of leases
// in which both are busy. It returns A.
func boundedPair(m *sim) *proc {
	m.t.Helper()
	m.policy = Bounded
	a := m.joinCut("A", 1)
	m.join("B", 1)
	m.leases(1, 20, "A", "B")
	return a
}

// entry returns process id's entry in Redis, as the script wrote it.
func (m *sim) entry(id string) string {
	m.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", m.srv.Port)})
	defer c.Close()
	e, err := c.HGet(context.Background(), "bev:{bound}:procs", id).Result()
	if err != nil {
		m.t.Fatal(err)
	}
	return e
}

// TestBoundedLocalCappedByHold: under Bounded, the hold a process
// registers with its lease is the one in its entry in Redis, and its
// local leases never pass it, even when its share, folded in since,
// says more (ticks missed by the whole group can raise it past the
// hold: see claimLocked). Here the share is raised by hand after the
// last lease from Redis; Local's lease would be about the rate.
func TestBoundedLocalCappedByHold(t *testing.T) {
	m := newSim(t)
	a := boundedPair(m)
	a.s.mu.Lock()
	claim := a.s.claim
	a.s.mu.Unlock()
	entry := m.entry("A")
	f := strings.Fields(entry)
	if len(f) != 9 || f[7] != fmt.Sprint(claim[0]) || f[8] != fmt.Sprint(claim[1]) || claim[0] < simRate/3 {
		t.Fatalf("A's entry %q, its hold %v: want the hold in the entry's last two fields, about half the rate", entry, claim)
	}
	a.s.mu.Lock()
	a.s.share, a.s.prev = [2]float64{0.9, 0.9}, [2]float64{0.9, 0.9}
	a.s.mu.Unlock()
	a.cut.set(true)
	m.at(21)
	m.lease("A")
	if st := a.s.Stats(); st.LocalLeases != 1 || st.Last.Read != claim[0] || st.Last.Write != claim[1] {
		t.Errorf("A's stats after a failed lease %+v: want a local lease of its hold %v", st, claim)
	}
}

// TestBoundedCloseReleases: a store under Bounded removes its entry from
// Redis when it is closed, so that Redis does not keep its share for it
// through its hold; under Local the entry is left to expire.
func TestBoundedCloseReleases(t *testing.T) {
	srv := testredis.New(t)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port)})
	defer c.Close()
	cfg, err := limiter.NewConfig(simRate, simRate, simRate, simRate, simTick)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{Local, Bounded} {
		g, _, err := NewGroup(cfg, Options{URL: srv.URL(), Name: "close", ID: p.String(), Fallback: p})
		if err != nil {
			t.Fatal(err)
		}
		// Start asked for the first lease: the entry is there.
		if n, err := c.HExists(context.Background(), "bev:{close}:procs", p.String()).Result(); err != nil || !n {
			t.Fatalf("%v: entry after Start: %v, %v", p, n, err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		n, err := c.HExists(context.Background(), "bev:{close}:procs", p.String()).Result()
		if err != nil || n != (p == Local) {
			t.Errorf("%v: entry after Close: %v, %v; want it only under Local", p, n, err)
		}
	}
}

// TestBoundedIdleHoldsNothing: a process under Bounded whose members
// fall idle registers no hold, though its share, an average over ticks,
// is still well above 0: Redis would otherwise keep that share from the
// busy process's leases in every tick until the idle one asked. Its
// local lease, should it lose Redis then, is nothing.
func TestBoundedIdleHoldsNothing(t *testing.T) {
	m := newSimBurst(t, simRate)
	a := boundedPair(m)
	a.idle = true // A's member moves nothing from here on
	m.leases(21, 22, "B", "A")
	entry := m.entry("A")
	a.s.mu.Lock()
	share := a.s.share
	a.s.mu.Unlock()
	if f := strings.Fields(entry); len(f) != 9 || f[7] != "0" || f[8] != "0" || share[0] < 0.2 {
		t.Fatalf("idle A's entry %q with its share %v: want no hold, and a share of 0.2 or more", entry, share)
	}
	// B asks first, and is granted all: nothing is kept for A.
	m.at(23)
	m.lease("B")
	if l := m.procs["B"].s.Stats().Last.Read; l != simRate {
		t.Errorf("B's lease beside an idle A: %d, want the rate %d", l, simRate)
	}
	a.cut.set(true)
	m.lease("A")
	if st := a.s.Stats(); st.LocalLeases != 1 || st.Last.Read != 0 {
		t.Errorf("idle A's stats after a failed lease %+v: want a local lease of nothing", st)
	}
}
