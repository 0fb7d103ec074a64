package redisgroup

import (
	"context"
	"fmt"
	"time"

	"github.com/bevgo/bev/limiter"
	"github.com/redis/go-redis/v9"
)

// leaseDelay is how long after a tick boundary of Redis's clock the store
// asks for the tick's lease: enough for a few milliseconds of disagreement
// between the clocks to leave the request in the right tick.
const leaseDelay = time.Millisecond

// Within a tick, after its lease, a process gives back what its members
// will not use at giveBackAt of the tick, and asks for a top-up for
// members still waiting at topUpAt: give-backs come first, so top-ups
// find them.
const (
	giveBackAt = 0.4
	topUpAt    = 0.6
)

// loop runs until Close: first after first, then at every tick the
// tick's lease; then, in a tick whose lease came from Redis, a give-back
// and a top-up if there is something to give back or members are
// waiting.
func (s *Store) loop(first time.Duration) {
	defer close(s.done)
	timer := time.NewTimer(first)
	defer timer.Stop()
	var (
		begins, next time.Time // this tick's start and the next lease
		phase        = modeLease
	)
	for {
		select {
		case <-timer.C:
		case <-s.quit:
			return
		}
		cfg := s.g.Config()
		tick := tickOf(cfg)
		switch phase {
		case modeGiveBack:
			s.giveBack(cfg, tick)
			phase = modeTopUp
			timer.Reset(time.Until(begins.Add(time.Duration(topUpAt * float64(tick)))))
			continue
		case modeTopUp:
			s.topUp(cfg, tick)
			phase = modeLease
			timer.Reset(time.Until(next))
			continue
		}
		untilNext, ok := s.lease(cfg, tick)
		now := time.Now()
		next = now.Add(untilNext + leaseDelay)
		begins = next.Add(-tick)
		if at := begins.Add(time.Duration(giveBackAt * float64(tick))); ok && at.After(now) {
			phase = modeGiveBack
			timer.Reset(at.Sub(now))
			continue
		}
		timer.Reset(untilNext + leaseDelay)
	}
}

// tickOf returns cfg's tick length.
func tickOf(cfg *limiter.Config) time.Duration {
	if cfg.Tick == 0 {
		return limiter.DefaultTick
	}
	return cfg.Tick
}

// minCallTimeout is the least time a script run may take before it
// counts as failed: a loaded machine can hold a healthy Redis's answer
// back for tens of milliseconds, which should not make an outage.
const minCallTimeout = 100 * time.Millisecond

// callTimeout bounds one script run: Options.Timeout, or half a tick but
// at least minCallTimeout.
func (s *Store) callTimeout(tick time.Duration) time.Duration {
	if s.timeout > 0 {
		return s.timeout
	}
	return max(tick/2, minCallTimeout)
}

// result is the script's answer.
type result struct {
	tick           int64
	grant          [2]int64
	untilNext      time.Duration
	members, procs int
	start          [2]int64 // what the tick held at its start
}

func (s *Store) run(cfg *limiter.Config, tick time.Duration, dm limiter.Demand, mode int, amount [2]int64) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout(tick))
	defer cancel()
	v, err := leaseScript.Run(ctx, s.client, s.keys,
		s.id, dm.Members, dm.Active[0], dm.Active[1], dm.Used[0], dm.Used[1],
		cfg.ReadRate, cfg.ReadBurst, cfg.WriteRate, cfg.WriteBurst,
		tick.Microseconds(), expiryTicks, mode, amount[0], amount[1]).Int64Slice()
	s.mu.Lock()
	s.stats.Calls++
	s.mu.Unlock()
	if err != nil {
		return result{}, err
	}
	if len(v) != 8 {
		return result{}, fmt.Errorf("script returned %d values, want 8", len(v))
	}
	return result{
		tick: v[0], grant: [2]int64{v[1], v[2]},
		untilNext: time.Duration(v[3]) * time.Microsecond,
		members:   int(v[4]),
		procs:     int(v[5]),
		start:     [2]int64{v[6], v[7]},
	}, nil
}

// expiryTicks is how many ticks a process's entry outlives its last
// script run: a process that died stops counting after that many.
const expiryTicks = 3

// lease asks for the tick's lease and grants it, or applies the policy if
// Redis fails. It returns how long until the next tick and whether the
// lease came from Redis.
func (s *Store) lease(cfg *limiter.Config, tick time.Duration) (time.Duration, bool) {
	dm := s.g.TakeDemand()
	r, err := s.run(cfg, tick, dm, modeLease, [2]int64{})
	if err != nil {
		s.mu.Lock()
		s.failLocked(err)
		// The tick's grants are unknown: it does not count in the share.
		s.granted, s.start = [2]int64{}, [2]int64{}
		s.mu.Unlock()
		s.renewClient()
		s.mu.Lock()
		now := time.Now()
		l := limiter.Lease{Tick: now.UnixNano() / int64(tick)}
		if s.policy == Local {
			l.Read = s.localShareLocked(limiter.Read, cfg.ReadRate)
			l.Write = s.localShareLocked(limiter.Write, cfg.WriteRate)
			s.stats.LocalLeases++
		}
		s.stats.Last = l
		s.mu.Unlock()
		s.g.Grant(l)
		return time.Duration(int64(tick) - now.UnixNano()%int64(tick)), false
	}
	s.mu.Lock()
	if !s.stats.Shared {
		s.stats.Shared = true
		s.stats.Recoveries++
	}
	s.stats.Leases++
	if r.untilNext < tick*3/4 {
		s.stats.Late++
	}
	s.stats.MembersHere = dm.Members
	s.stats.MembersTotal = r.members
	s.stats.Processes = r.procs
	s.foldShareLocked()
	s.granted, s.start = r.grant, r.start
	l := limiter.Lease{Tick: r.tick, Read: r.grant[0], Write: r.grant[1]}
	s.stats.Last = l
	s.mu.Unlock()
	s.g.Grant(l)
	return r.untilNext, true
}

// giveBack returns to Redis what the members here will not use this
// tick: in each direction in which none of them has moved a byte since
// the lease or waits, what is left of the lease (Group.Reclaim). A
// process whose members are busy keeps its lease: between two turns a
// busy member is often in the middle of a write, not waiting.
func (s *Store) giveBack(cfg *limiter.Config, tick time.Duration) {
	dm := s.g.Demand()
	var back [2]int64
	for d := range 2 {
		if dm.Active[d] == 0 {
			back[d] = s.g.Reclaim(limiter.Dir(d))
		}
	}
	if back == [2]int64{} {
		return
	}
	r, err := s.run(cfg, tick, s.g.Demand(), modeGiveBack, back)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// Redis settles the lease at the next tick: what was not used
		// is available again then.
		s.failLocked(err)
		return
	}
	if r.start == [2]int64{} {
		// Too late for its tick: the next lease settles it.
		return
	}
	for d := range 2 {
		s.granted[d] -= back[d]
	}
	s.stats.GiveBacks++
}

// topUp asks, for each direction in which members are waiting, for what
// the other processes left unused this tick, and adds it to the lease.
func (s *Store) topUp(cfg *limiter.Config, tick time.Duration) {
	dm := s.g.Demand()
	var want [2]int64
	if dm.Waiting[0] > 0 {
		want[0] = cfg.ReadRate
	}
	if dm.Waiting[1] > 0 {
		want[1] = cfg.WriteRate
	}
	if want == [2]int64{} {
		return
	}
	r, err := s.run(cfg, tick, dm, modeTopUp, want)
	s.mu.Lock()
	if err != nil {
		// The next tick's lease applies the policy.
		s.failLocked(err)
		s.mu.Unlock()
		return
	}
	if r.grant != [2]int64{} {
		s.stats.TopUps++
	}
	for d := range 2 {
		s.granted[d] += r.grant[d]
	}
	s.mu.Unlock()
	s.g.AddLease(r.grant[0], r.grant[1])
}

func (s *Store) failLocked(err error) {
	s.stats.Errors++
	s.stats.LastError = err.Error()
	if s.stats.Shared {
		s.stats.Shared = false
		s.stats.Outages++
	}
}

// shareWeight is the weight of the latest tick in the moving average of
// the process's share: about the last five ticks count.
const shareWeight = 0.2

// foldShareLocked adds the tick that ends to the moving average of the
// process's share of the budget: what Redis granted it in the tick (its
// lease, plus top-ups, less give-backs) over what the tick held at its
// start. A tick that held nothing tells nothing and is skipped.
//
// It is the share granted, not the share used: a process held back by
// its machine (late leases, a starved CPU) uses less than it is granted,
// and a fallback by use would then shrink the processes' sum below the
// budget exactly when the machine is loaded; what the script grants in a
// tick adds up to at most what the tick held, so shares by grant add up
// to at most one. For that the average starts at 0, as if the ticks
// before the process's first counted (they granted it nothing): every
// process's average then weighs the same ticks alike. Started at its
// first tick's share instead, a process that joined beside one that had
// been alone kept its whole share while the other still remembered its
// ticks alone, and the two added up to more than one for tens of ticks
// (TestSharesAddUpToOne). A new process's share thus grows to its own
// over about ten ticks: what it may take in an outage meanwhile is less,
// never more.
func (s *Store) foldShareLocked() {
	for d := range 2 {
		if s.start[d] <= 0 {
			continue
		}
		f := min(max(float64(s.granted[d])/float64(s.start[d]), 0), 1)
		s.share[d] = (1-shareWeight)*s.share[d] + shareWeight*f
	}
}

// localShareLocked is the Local policy's lease in direction d: the
// process's share of the budget, by what Redis granted it, over the last
// few ticks from Redis, times the rate. The processes' shares add up to
// at most one, so together they stay within the budget as long as each
// keeps its share. A process that had none (idle until then) gets an
// equal share of the processes it last saw, and one that never heard from
// Redis the whole rate: only those can take the group over its budget.
func (s *Store) localShareLocked(d limiter.Dir, rate int64) int64 {
	switch {
	case s.share[d] > 0:
		return max(int64(s.share[d]*float64(rate)), 1)
	case s.stats.Processes > 0:
		return rate / int64(s.stats.Processes)
	}
	return rate
}

// renewClient replaces the client after a failure with a new one, with a
// pool of its own. go-redis's pool, after as many failed dials as it has
// connections, stops dialling and probes once a second from a goroutine
// of its own: Redis's return would be seen up to a second late, and the
// probe outlives Close by as long. A new client per failed tick dials
// afresh at the next one and leaves no goroutine behind.
func (s *Store) renewClient() {
	s.client.Close()
	s.client = redis.NewClient(s.opts)
}
