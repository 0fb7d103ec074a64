package redisgroup

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
	"github.com/bevgo/bev/limiter"
)

// sim runs the stores of one group (processes) against a real Redis, on
// one clock the test advances by hand: it is Redis's (the script's time
// argument) and the stores' local one. Each store's lease is asked by
// the test (Store.lease), not by its goroutine, so that the schedule is
// exactly the one written: which process asks in which tick, in which
// order, and when Redis dies.
type sim struct {
	t     *testing.T
	srv   *testredis.Server
	cfg   *limiter.Config
	clock time.Time
	procs map[string]*proc
	// policy and hold are the Options of the stores joined next.
	policy Policy
	hold   time.Duration
}

// proc is one process of the group: a store and its group, whose
// members the test makes active by hand.
type proc struct {
	sim *sim
	s   *Store
	g   *limiter.Group
	ms  []*limiter.Member
	// use is the fraction of each lease the members move; 0 moves one
	// byte a member, which leaves nearly all of it unused. Members of an
	// idle process move nothing.
	use  float64
	idle bool
	// cut, if not nil, is the process's network to Redis (joinCut).
	cut *cutter
}

// simRate is the group's rate per tick; the burst is two ticks, so that
// what a lease left unused comes back at its settlement.
const (
	simRate = 6000
	simTick = 50 * time.Millisecond
)

// simBase is a tick boundary: the sims' tick k begins k ticks after it.
var simBase = time.Unix(1_800_000_000, 0)

func newSim(t *testing.T) *sim {
	t.Helper()
	return newSimBurst(t, 2*simRate)
}

// newSimBurst is newSim with a burst of burst bytes.
func newSimBurst(t *testing.T, burst int64) *sim {
	t.Helper()
	cfg, err := limiter.NewConfig(simRate, burst, simRate, burst, simTick)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, srv: testredis.New(t), cfg: cfg, procs: map[string]*proc{}}
}

// nopStore is the store of a sim's groups: the sim grants their leases
// through the redisgroup Store it drives by hand.
type nopStore struct{}

func (nopStore) Start(*limiter.Group) error { return nil }
func (nopStore) Renew(time.Time, *limiter.Config, [2]int64) (limiter.Lease, bool) {
	return limiter.Lease{}, false
}
func (nopStore) Close() error { return nil }

// join adds process id with members members to the group; they are
// active from the start (see active).
func (m *sim) join(id string, members int) *proc {
	return m.joinIdle(id, members, false)
}

// joinIdle is join, with members that move nothing if idle.
func (m *sim) joinIdle(id string, members int, idle bool) *proc {
	m.t.Helper()
	return m.joinVia(id, members, idle, nil)
}

// joinCut is join, with the process reaching Redis through a cutter,
// which the test cuts to lose Redis for this process alone.
func (m *sim) joinCut(id string, members int) *proc {
	m.t.Helper()
	c := &cutter{}
	p := m.joinVia(id, members, false, c)
	p.cut = c
	return p
}

// joinVia is joinIdle, with the client dialling through c if not nil.
func (m *sim) joinVia(id string, members int, idle bool, c *cutter) *proc {
	m.t.Helper()
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if c != nil {
		dial = c.dial
	}
	s, err := newStore(Options{URL: m.srv.URL(), Name: "bound", ID: id, Timeout: 5 * time.Second,
		Fallback: m.policy, Hold: m.hold}, dial)
	if err != nil {
		m.t.Fatal(err)
	}
	s.now = func() time.Time { return m.clock }
	s.redisNow = func() int64 { return m.clock.UnixMicro() }
	g, err := limiter.NewSharedGroup(m.cfg, nopStore{})
	if err != nil {
		m.t.Fatal(err)
	}
	s.g = g
	p := &proc{sim: m, s: s, g: g, idle: idle}
	p.add(members)
	m.t.Cleanup(func() {
		for _, mb := range p.ms {
			mb.Leave()
		}
		g.Close()
		s.closeClient()
	})
	m.procs[id] = p
	return p
}

// add joins n more members to p's group, each active at once with a
// byte moved each way.
func (p *proc) add(n int) {
	p.sim.t.Helper()
	for range n {
		mb, err := p.g.Join()
		if err != nil {
			p.sim.t.Fatal(err)
		}
		p.ms = append(p.ms, mb)
		if !p.idle {
			mb.Consume(limiter.Read, 1)
			mb.Consume(limiter.Write, 1)
		}
	}
}

// remove has n of p's members leave.
func (p *proc) remove(n int) {
	for _, mb := range p.ms[len(p.ms)-n:] {
		mb.Leave()
	}
	p.ms = p.ms[:len(p.ms)-n]
}

// active has the members move p.use of the last lease, each at least
// one byte, each way: the members are active at the next lease.
func (p *proc) active() {
	if p.idle {
		return
	}
	l := p.s.Stats().Last
	p.consume([2]int64{int64(p.use * float64(l.Read)), int64(p.use * float64(l.Write))}, 1)
}

// consume has p's members move n bytes each way between them, the
// remainder of an even split by the first, and each at least least.
func (p *proc) consume(n [2]int64, least int) {
	for i, mb := range p.ms {
		for d, n := range n {
			k := int(n / int64(len(p.ms)))
			if i == 0 {
				k += int(n % int64(len(p.ms)))
			}
			mb.Consume(limiter.Dir(d), max(k, least))
		}
	}
}

// at sets the clock to just after tick k's boundary, as the stores'
// goroutines ask (leaseDelay).
func (m *sim) at(k int) {
	m.clock = simBase.Add(time.Duration(k)*simTick + leaseDelay)
}

// leases plays ticks from to to: in each, the processes named ask for
// their lease, in order (see lease).
func (m *sim) leases(from, to int, ids ...string) {
	m.t.Helper()
	for k := from; k <= to; k++ {
		m.at(k)
		m.lease(ids...)
	}
}

// lease has the processes named ask for their lease of the current tick,
// in order, each then making its members active again. With Redis up, a
// lease must come from Redis.
func (m *sim) lease(ids ...string) {
	m.t.Helper()
	for _, id := range ids {
		p := m.procs[id]
		_, ok := p.s.lease(m.cfg, simTick)
		if up := m.srv != nil && !p.cut.isCut(); ok != up {
			m.t.Fatalf("%s: lease from Redis %v with Redis up %v: %+v", id, ok, up, p.s.Stats())
		}
		p.active()
	}
}

// die kills Redis.
func (m *sim) die() {
	m.srv.Stop()
	m.srv = nil
}

// checkBudget checks that the processes' local leases (Stats.Last: each
// must have asked at least once since Redis died) add up to at most the
// group's rate in each direction, and returns the read leases.
func (m *sim) checkBudget() map[string]int64 {
	m.t.Helper()
	var sum [2]int64
	got := map[string]int64{}
	for id, p := range m.procs {
		st := p.s.Stats()
		if st.Shared || st.LocalLeases == 0 {
			m.t.Fatalf("%s: stats %+v: want a local lease", id, st)
		}
		sum[0] += st.Last.Read
		sum[1] += st.Last.Write
		got[id] = st.Last.Read
	}
	for d, n := range sum {
		if n > simRate {
			m.t.Errorf("local leases %v in direction %d add up to %d, over the group's rate %d", got, d, n, simRate)
		}
	}
	return got
}

// TestLocalSharesHoldBudget plays hostile schedules on two or three
// processes of one group, on a clock the test advances and a Redis it
// kills, and checks that their local leases during the outage never add
// up to more than the group's rate: the Local fallback's shares of all
// processes of a group sum to at most one.
func TestLocalSharesHoldBudget(t *testing.T) {
	// alone: A alone for thirty ticks, its share near one; B joins at
	// tick 31.
	alone := func(m *sim) {
		m.join("A", 1)
		m.leases(1, 30, "A")
		m.join("B", 1)
	}
	for _, tc := range []struct {
		name string
		play func(m *sim)
	}{{
		// A misses its lease of tick 32 (a failed run, a stall), while
		// B folds the tick into its share.
		"missed lease", func(m *sim) {
			alone(m)
			m.at(31)
			m.lease("A", "B")
			m.at(32)
			m.lease("B")
			m.at(33)
			m.lease("A", "B")
			m.at(34)
			m.die()
			m.lease("A", "B")
		},
	}, {
		// Redis dies in tick 33 after B's lease and before A's: A's
		// share is a tick behind B's.
		"outage between two leases", func(m *sim) {
			alone(m)
			m.leases(31, 32, "A", "B")
			m.at(33)
			m.lease("B")
			m.die()
			m.lease("A")
			m.at(34)
			m.lease("B")
		},
	}, {
		// A is held back from tick 33 to the outage at 35 (its machine
		// stalled), as B goes on.
		"stalled into the outage", func(m *sim) {
			alone(m)
			m.leases(31, 32, "A", "B")
			m.leases(33, 34, "B")
			m.at(35)
			m.die()
			m.lease("A", "B")
		},
	}, {
		// A and B with a member each for thirty ticks, A's using all
		// of each lease and B's half; three members join B in tick 30,
		// after its lease. In tick 31 A asks first, by B's entry still
		// at one member, and B, settling the half it left, gets the
		// share of it that A's lease did not count.
		"members join mid-tick", func(m *sim) {
			m.join("A", 1).use = 1
			m.join("B", 1).use = 0.5
			m.leases(1, 30, "A", "B")
			m.procs["B"].add(3)
			m.leases(31, 32, "A", "B")
			m.at(33)
			m.die()
			m.lease("A", "B")
		},
	}, {
		// The other way round: B's four members use half of each
		// lease, A's one all of it; three of B's leave in tick 30,
		// after its lease, and B asks first in tick 31.
		"members leave mid-tick", func(m *sim) {
			m.join("A", 1).use = 1
			m.join("B", 4).use = 0.5
			m.leases(1, 30, "B", "A")
			m.procs["B"].remove(3)
			m.leases(31, 32, "B", "A")
			m.at(33)
			m.die()
			m.lease("A", "B")
		},
	}, {
		// B's first lease is in the tick before Redis dies: it has no
		// share yet.
		"joined in the tick before", func(m *sim) {
			alone(m)
			m.at(31)
			m.lease("A", "B")
			m.at(32)
			m.die()
			m.lease("A", "B")
		},
	}, {
		// C's two members idle from its start: it is granted nothing.
		"idle process", func(m *sim) {
			m.join("A", 1)
			m.joinIdle("C", 2, true)
			m.leases(1, 30, "A", "C")
			m.at(31)
			m.die()
			m.lease("A", "C")
		},
	}, {
		// Three processes; C exits after tick 33 (its entry expires
		// three ticks later) while A misses tick 34, and Redis dies
		// in tick 38 between B's lease and A's.
		"leaving and missing", func(m *sim) {
			alone(m)
			m.join("C", 2)
			m.leases(31, 33, "A", "B", "C")
			delete(m.procs, "C")
			m.at(34)
			m.lease("B")
			m.leases(35, 37, "B", "A")
			m.at(38)
			m.lease("B")
			m.die()
			m.lease("A")
			m.at(39)
			m.lease("B")
		},
	}} {
		// Under Bounded, within its hold, a process grants itself what
		// Local would (at most the hold Redis keeps for it).
		for _, p := range []Policy{Local, Bounded} {
			t.Run(tc.name+"/"+p.String(), func(t *testing.T) {
				m := newSim(t)
				m.policy = p
				tc.play(m)
				t.Logf("local read leases: %v", m.checkBudget())
			})
		}
	}
}
