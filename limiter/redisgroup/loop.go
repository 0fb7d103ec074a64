package redisgroup

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
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
	// shareTick is the tick whose share of the budget share reports, per
	// direction in millionths; -1: none.
	shareTick int64
	share     [2]int64
}

func (s *Store) run(cfg *limiter.Config, tick time.Duration, dm limiter.Demand, mode int, amount [2]int64) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout(tick))
	defer cancel()
	s.mu.Lock()
	hold := s.claim
	if mode == modeLease {
		hold = s.claimLocked(cfg, dm)
	}
	s.mu.Unlock()
	args := []any{s.id, dm.Members, dm.Active[0], dm.Active[1], dm.Used[0], dm.Used[1],
		cfg.ReadRate, cfg.ReadBurst, cfg.WriteRate, cfg.WriteBurst,
		tick.Microseconds(), s.expiry(tick), mode, amount[0], amount[1], hold[0], hold[1]}
	if s.redisNow != nil {
		args = append(args, s.redisNow())
	}
	v, err := leaseScript.Run(ctx, s.client, s.keys, args...).Int64Slice()
	s.mu.Lock()
	s.stats.Calls++
	if err == nil && mode == modeLease {
		s.claim = hold
	}
	s.mu.Unlock()
	if err != nil {
		s.renewClient()
		return result{}, err
	}
	return parseReply(v, tick, mode, amount)
}

// parseReply reads the script's reply v to a run in mode (amount: a
// top-up's or give-back's) under tick, and checks it against what the
// script can answer: 11 values; a tick that is not negative; grants that
// are not negative (a top-up's at most what it asked; a lease's may pass
// this process's burst, when another process of the group, or this one
// before a SetConfig, filled the tick with a larger one); the time to the
// next tick in (0, tick]; counts of members and processes from 0 to
// math.MaxInt32; a share's tick from -1 to the tick; and shares of -1
// (none) or from 0 to a million. What the tick held at its start may be
// negative (a debt). A reply outside that (a script of another version, a
// server that is not Redis) is an error wrapping ErrReply, and the run
// counts as failed: a negative grant or time, or a share above one, would
// break the budget or the loop.
func parseReply(v []int64, tick time.Duration, mode int, amount [2]int64) (result, error) {
	bad := func(format string, args ...any) (result, error) {
		return result{}, fmt.Errorf("%w: "+format, append([]any{ErrReply}, args...)...)
	}
	if len(v) != 11 {
		return bad("%d values, want 11", len(v))
	}
	r := result{
		tick: v[0], grant: [2]int64{v[1], v[2]},
		start:     [2]int64{v[6], v[7]},
		shareTick: v[8],
		share:     [2]int64{v[9], v[10]},
	}
	if r.tick < 0 {
		return bad("tick %d", r.tick)
	}
	for d := range 2 {
		if g := r.grant[d]; g < 0 || mode == modeTopUp && g > amount[d] {
			return bad("grant %d (asked %d in mode %d)", g, amount[d], mode)
		}
		if sh := r.share[d]; sh < -1 || sh > 1e6 {
			return bad("share %d outside [-1, 1000000]", sh)
		}
	}
	if us := v[3]; us <= 0 || us > tick.Microseconds() {
		return bad("%d µs to the next tick, outside (0, %d]", us, tick.Microseconds())
	}
	r.untilNext = time.Duration(v[3]) * time.Microsecond
	if v[4] < 0 || v[5] < 0 || v[4] > math.MaxInt32 || v[5] > math.MaxInt32 {
		return bad("%d members, %d processes", v[4], v[5])
	}
	r.members, r.procs = int(v[4]), int(v[5])
	if r.shareTick < -1 || r.shareTick > r.tick {
		return bad("share's tick %d outside [-1, %d]", r.shareTick, r.tick)
	}
	return r, nil
}

// retryWait is how long after a failed lease, which returned at now, the
// store asks again (less leaseDelay, which the loop adds): until the next
// tick boundary of the local clock, so at most a tick. There is no
// backoff: an outage costs a failed run per tick and process, and the
// first run once Redis answers again ends it. Shared leases thus resume
// within a tick plus leaseDelay of Redis's return when the runs in the
// outage failed at once (connections refused), and within that plus the
// call timeout when they hung until it (a network that drops packets):
// the run under way when Redis returns fails first
// (TestRecoveryTime measures both in virtual time).
func retryWait(now time.Time, tick time.Duration) time.Duration {
	return time.Duration(int64(tick) - now.UnixNano()%int64(tick))
}

// expiryTicks is how many ticks a process's entry outlives its last
// script run under Local and Block: a process that died stops counting
// after that many.
const expiryTicks = 3

// DefaultHold is [Options.Hold]'s default: how long a process under
// [Bounded] grants itself its share after its last lease from Redis.
const DefaultHold = time.Second

// holdTicks is the Bounded policy's L: Options.Hold in ticks, rounded to
// the nearest, at least one.
func (s *Store) holdTicks(tick time.Duration) int64 {
	return max(int64((s.hold+tick/2)/tick), 1)
}

// expiry is how many ticks a process's entry outlives its last script
// run: expiryTicks, or under Bounded L + fenceMargin, the ticks in which
// Redis keeps the process's share for it (the script's holds).
func (s *Store) expiry(tick time.Duration) int64 {
	if s.policy != Bounded {
		return expiryTicks
	}
	return s.holdTicks(tick) + s.fenceMargin(tick)
}

// fenceMargin is how many ticks past L Redis keeps a Bounded process's
// share for it, so that it has certainly stopped using its local leases
// by then, whatever the two clocks say.
//
// Say the process sent its last successful lease at t0 by its clock,
// and Redis ran it at r by its own, in tick a. The process grants itself
// at most L leases, one per failed run, each only when the run fails
// before t0 + L+1 ticks by its clock (see lease: the L-th run starts
// about L ticks after t0, at a tick boundary of the local clock, which
// need not be in phase with Redis's). That is before r + L+1 ticks by
// Redis's clock: both spans are measured from the same send, each on
// one clock, so the difference of the two clocks cancels (only their
// rates could differ, by parts per million: microseconds over a
// second's hold). Redis keeps the share from r on: its holds cover
// every tick that begins by the entry's expiry, r + (L + margin) ticks,
// so ticks a+1 to a+L+margin at least.
//
// The last local lease is not over when it is granted: members spend it
// until the lease that replaces it, the empty one of the next failed run,
// which starts at the next tick boundary of the local clock (at most a
// tick and leaseDelay later) and fails within the call timeout (a run in
// flight, hanging on a network that drops packets). So the local leases'
// bytes are spent before r + (L+2) ticks + leaseDelay + callTimeout, and
// a margin of 3 + ceil(callTimeout/tick) ticks covers that, with a tick
// to spare for leaseDelay and the clocks' rates: 5 ticks of 50 ms with
// the default call timeout (100 ms), 4 of 100 ms. A store held back by
// its machine past that spends no more bytes: its last lease is one
// tick's hold, however late it is replaced.
func (s *Store) fenceMargin(tick time.Duration) int64 {
	ct := s.callTimeout(tick)
	return 3 + int64((ct+tick-1)/tick)
}

// claimLocked is the hold this process registers, under Bounded, with
// the lease it asks for with demand dm, per direction: its share up to
// the tick before its last lease, times the rate, or 0 if none of its
// members is active in that direction; 0 under the other policies. That
// is at least the local lease it takes if Redis fails it at the next
// tick: the lease it asks for folds that share in as its share up to the
// tick before (prev), and fallLocked takes the lesser of the two. Its
// local leases are capped by the hold registered with its last
// successful lease (claim), which is what Redis keeps for it: the cap
// changes nothing but in a direction its members were idle in (an idle
// process keeps nothing: Redis keeps a hold from the others until the
// process asks in the tick, and a share that decays over ticks after its
// members stopped would hold back the busy ones' leases meanwhile), and
// after ticks missed, which may fold in a larger share.
func (s *Store) claimLocked(cfg *limiter.Config, dm limiter.Demand) [2]int64 {
	if s.policy != Bounded || s.last < 0 {
		return [2]int64{}
	}
	var h [2]int64
	for d, rate := range [2]int64{cfg.ReadRate, cfg.WriteRate} {
		if dm.Active[d] > 0 {
			h[d] = int64(s.share[d] * float64(rate))
		}
	}
	return h
}

// lease asks for the tick's lease and grants it, or applies the policy if
// Redis fails. It returns how long until the next tick and whether the
// lease came from Redis.
func (s *Store) lease(cfg *limiter.Config, tick time.Duration) (time.Duration, bool) {
	dm := s.g.TakeDemand()
	sent := s.now()
	r, err := s.run(cfg, tick, dm, modeLease, [2]int64{})
	if err != nil {
		s.mu.Lock()
		s.failLocked(err)
		now := s.now()
		if !s.falling {
			s.falling = true
			s.fallLocked(now, tick)
		}
		l := limiter.Lease{Tick: now.UnixNano() / int64(tick)}
		switch s.policy {
		case Local:
			l.Read = s.localLeaseLocked(limiter.Read, cfg.ReadRate)
			l.Write = s.localLeaseLocked(limiter.Write, cfg.WriteRate)
			s.stats.LocalLeases++
		case Bounded:
			// The fence: at most L local leases, all within L+1 ticks
			// of the last lease from Redis, each at most the hold Redis
			// keeps for this process (see fenceMargin).
			if L := s.holdTicks(tick); s.locals < L && now.Before(s.sent.Add(time.Duration(L+1)*tick)) {
				l.Read = min(s.localLeaseLocked(limiter.Read, cfg.ReadRate), s.claim[0])
				l.Write = min(s.localLeaseLocked(limiter.Write, cfg.WriteRate), s.claim[1])
				s.locals++
				s.stats.LocalLeases++
			} else {
				s.stats.Fenced++
			}
		}
		s.stats.Last = l
		s.mu.Unlock()
		s.g.Grant(l)
		return retryWait(now, tick), false
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
	s.foldLocked(r)
	s.boundary = sent.Add(r.untilNext)
	s.sent = sent
	s.locals = 0
	s.falling = false
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

// foldLocked adds the ticks from that of the last lease to the one before
// r's to the moving average of the process's share of the budget, one
// fold per tick of Redis's clock: in the tick whose share the script
// reports (r.shareTick, normally the last lease's), that share; in every
// other one, 0. Redis granted the process nothing in a tick it did not
// ask in (missed: its run failed, or its machine held it back past the
// tick), and a share Redis did not report (it kept only the last tick
// that ended, or lost the process's entry) counts as none: less than
// the process had, never more.
//
// A tick counts in every process's average, so that all of them weigh
// the same ticks alike: the average of the shares' sum is then the sum
// of the averages, and with the shares of each tick adding up to at most
// one (the script's), the averages do too, up to any one tick. Skipped,
// as it was, a tick a process missed left its average a step behind the
// others': one alone for thirty ticks that missed a tick just after
// another joined kept about a tenth of the budget more than it had
// (TestLocalSharesHoldBudget, "missed lease": 6591 B per tick of a
// 6000 B budget). The average starts at 0, as if the ticks before the
// process's first counted (they granted it nothing): a new process's
// share grows to its own over about ten ticks (TestSharesAddUpToOne).
func (s *Store) foldLocked(r result) {
	if s.last < 0 || r.tick <= s.last {
		s.last = max(s.last, r.tick)
		return
	}
	// Ticks last to r.tick-1 fold in; all but r.shareTick's grant
	// nothing. avg(k) is the average up to tick k.
	w := 1 - shareWeight
	avg := func(d int, k int64) float64 {
		a := s.share[d] * math.Pow(w, float64(k-s.last+1))
		if t := r.shareTick; t >= s.last && t <= k && r.share[d] > 0 {
			a += shareWeight * min(float64(r.share[d])/1e6, 1) * math.Pow(w, float64(k-t))
		}
		return a
	}
	for d := range 2 {
		s.prev[d], s.share[d] = avg(d, r.tick-2), avg(d, r.tick-1)
	}
	s.stats.Missed += uint64(r.tick - s.last - 1)
	s.last = r.tick
}

// fallLocked sets the process's share for the outage whose first failed
// lease returned at now: the least of its averages up to the tick before
// its last lease (share), up to the tick before that (prev), and the
// first decayed by a tick of nothing for each tick boundary after the
// next that may have passed by now (the process held back, or a run
// that took long to fail). Processes do not lose Redis in the same tick:
// one whose lease in the tick Redis died in came before, and its average
// is a tick ahead of one whose lease came after; one held back is
// further behind. Their averages up to the tick before the one Redis
// died in add up to at most one (foldLocked), and each process's share
// here is at most its own: the tick before its last lease's, the one
// before that, or a tick since, which it folds as nothing. Taken at its
// average alone, as it was, a process that asked after Redis died took
// the share it had a tick before, and one that had been alone kept 0.1
// of the budget more than it had (TestLocalSharesHoldBudget, "outage
// between two leases": 6591 B per tick of a 6000 B budget).
func (s *Store) fallLocked(now time.Time, tick time.Duration) {
	if s.last < 0 {
		s.local = [2]float64{}
		return
	}
	var boundaries int64
	if !now.Before(s.boundary) {
		boundaries = 1 + int64(now.Sub(s.boundary)/tick)
	}
	beyond := max(boundaries-1, 0)
	s.stats.Missed += uint64(beyond)
	decay := math.Pow(1-shareWeight, float64(beyond))
	for d := range 2 {
		s.local[d] = min(s.prev[d], s.share[d]*decay)
	}
}

// localLeaseLocked is the Local policy's lease in direction d: the
// process's share of the budget for the outage (fallLocked) times the
// rate, rounded down. The shares of a group's processes add up to at
// most one, so together they stay within the budget. A process that had
// no share (it was idle, or new, or never heard from Redis) gets
// nothing: its members wait, as under Block, until Redis is back.
func (s *Store) localLeaseLocked(d limiter.Dir, rate int64) int64 {
	return int64(s.local[d] * float64(rate))
}

// renewClient replaces the client after a failed run with a new one,
// with a pool of its own. go-redis's pool, after as many failed dials as
// it has connections (two), stops dialling and probes once a second from
// a goroutine of its own: Redis's return would be seen up to a second
// late, and the probe outlives Close by as long. A new client per failed
// run dials afresh at the next one and leaves no goroutine behind.
// (Renewed after a failed lease only, as it was, a client whose top-up
// failed too saw two failed dials, and its probe outlived the test:
// goleak found it after TestOutageBlock run alone with -race in 8
// runs of 8, and in none of 8 since.)
func (s *Store) renewClient() {
	s.closeClient()
	s.client = s.newClient()
}

// newClient returns a client on s.opts whose dials end when it is closed
// (closeClient). go-redis dials from a goroutine of its own, bounded by
// the dial timeout only: the run that asked gives up at its own
// deadline, and Close returns, while the dial goes on. Under a network
// that drops packets an outage left one such goroutine per tick, each
// for up to the dial timeout (a second by default), and Close did not
// join them (TestRecoveryTime, blackholed: synctest found them blocked
// after the test).
func (s *Store) newClient() *redis.Client {
	base := s.dial
	if base == nil {
		d := &net.Dialer{Timeout: s.opts.DialTimeout}
		base = d.DialContext
		if s.opts.TLSConfig != nil {
			base = (&tls.Dialer{NetDialer: d, Config: s.opts.TLSConfig}).DialContext
		}
	}
	closed, stop := context.WithCancel(context.Background())
	o := *s.opts
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(closed, cancel)()
		return base(ctx, network, addr)
	}
	s.stopDials = stop
	return redis.NewClient(&o)
}

// closeClient closes the client and ends its dials, and returns the
// client's error.
func (s *Store) closeClient() error {
	err := s.client.Close()
	s.stopDials()
	return err
}
