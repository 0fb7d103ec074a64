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

// loop runs until Close: at every tick, the tick's lease; in the middle of
// the tick, a top-up if members are waiting.
func (s *Store) loop() {
	defer close(s.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	topup := false // the next wake-up is the middle of a tick
	var nextLease time.Time
	for {
		select {
		case <-timer.C:
		case <-s.quit:
			return
		}
		cfg := s.g.Config()
		tick := cfg.Tick
		if tick == 0 {
			tick = limiter.DefaultTick
		}
		if topup {
			s.topUp(cfg, tick)
			topup = false
			timer.Reset(time.Until(nextLease))
			continue
		}
		untilNext, ok := s.lease(cfg, tick)
		nextLease = time.Now().Add(untilNext + leaseDelay)
		if ok && untilNext > tick/4 {
			topup = true
			timer.Reset(untilNext - tick/2 + leaseDelay)
			continue
		}
		timer.Reset(time.Until(nextLease))
	}
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
	tick                  int64
	grant                 [2]int64
	untilNext             time.Duration
	members, procs        int
	weightHere, weightAll [2]int64
}

func (s *Store) run(cfg *limiter.Config, tick time.Duration, dm limiter.Demand, topup bool, want [2]int64) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout(tick))
	defer cancel()
	tu := 0
	if topup {
		tu = 1
	}
	v, err := leaseScript.Run(ctx, s.client, s.keys,
		s.id, dm.Members, dm.Active[0], dm.Active[1], dm.Used[0], dm.Used[1],
		cfg.ReadRate, cfg.ReadBurst, cfg.WriteRate, cfg.WriteBurst,
		tick.Microseconds(), expiryTicks, tu, want[0], want[1]).Int64Slice()
	if err != nil {
		return result{}, err
	}
	if len(v) != 10 {
		return result{}, fmt.Errorf("script returned %d values, want 10", len(v))
	}
	return result{
		tick: v[0], grant: [2]int64{v[1], v[2]},
		untilNext:  time.Duration(v[3]) * time.Microsecond,
		members:    int(v[4]),
		procs:      int(v[5]),
		weightHere: [2]int64{v[6], v[8]},
		weightAll:  [2]int64{v[7], v[9]},
	}, nil
}

// expiryTicks is how many ticks a process's entry outlives its last
// script run: a process that died stops counting after that many.
const expiryTicks = 3

// lease asks for the tick's lease and grants it, or applies the policy if
// Redis fails. It returns how long until the next tick and whether the
// lease came from Redis.
func (s *Store) lease(cfg *limiter.Config, tick time.Duration) (time.Duration, bool) {
	dm := s.g.Demand()
	r, err := s.run(cfg, tick, dm, false, [2]int64{})
	s.mu.Lock()
	s.stats.Calls++
	if err != nil {
		s.failLocked(err)
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
	if !s.stats.Shared {
		s.stats.Shared = true
		s.stats.Recoveries++
	}
	s.stats.Leases++
	s.stats.MembersHere = dm.Members
	s.stats.MembersTotal = r.members
	s.stats.Processes = r.procs
	s.foldShareLocked(cfg)
	s.granted = r.grant
	l := limiter.Lease{Tick: r.tick, Read: r.grant[0], Write: r.grant[1]}
	s.stats.Last = l
	s.mu.Unlock()
	s.g.Grant(l)
	return r.untilNext, true
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
	r, err := s.run(cfg, tick, dm, true, want)
	s.mu.Lock()
	s.stats.Calls++
	if err != nil {
		// The next tick's lease applies the policy.
		s.failLocked(err)
		s.mu.Unlock()
		return
	}
	if r.grant != [2]int64{} {
		s.stats.TopUps++
	}
	s.granted[0] += r.grant[0]
	s.granted[1] += r.grant[1]
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

// foldShareLocked adds the tick that ends, what was granted in it, to the
// moving average of the process's share of the rate.
func (s *Store) foldShareLocked(cfg *limiter.Config) {
	for d, rate := range [2]int64{cfg.ReadRate, cfg.WriteRate} {
		f := min(float64(s.granted[d])/float64(rate), 1)
		if !s.shared {
			s.share[d] = f
			continue
		}
		s.share[d] = (1-shareWeight)*s.share[d] + shareWeight*f
	}
	s.shared = true
	s.granted = [2]int64{}
}

// localShareLocked is the Local policy's lease in direction d: the
// process's share of the rate over the last few ticks from Redis. The
// processes' shares add up to at most the budget, so together they stay
// within it as long as each keeps its share. A process that had none
// (idle until then) gets an equal share of the processes it last saw,
// and one that never heard from Redis the whole rate: only those can
// take the group over its budget.
func (s *Store) localShareLocked(d limiter.Dir, rate int64) int64 {
	switch {
	case s.share[d] > 0:
		return int64(s.share[d] * float64(rate))
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
