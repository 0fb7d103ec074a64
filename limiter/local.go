package limiter

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// localStore is the in-process [Store], the one [NewGroup] gives a group:
// the group's budget kept in the process, one token bucket per direction
// in a golang.org/x/time/rate Limiter, refilled at the tick boundaries of
// the local clock. It starts no goroutine: it answers [Store.Renew], which
// the group calls lazily, at the first call in each tick, so its leases
// are the bucket as libevent's refill timer would have left it.
//
// Its lease is the whole bucket: what the members leave of one lease is
// the bucket the next tick's refill starts from (capped at the burst).
// The group's lock guards it: only the group calls it.
type localStore struct {
	cfg     Config
	started bool
	dirs    [2]localBucket
}

// Start does nothing: the local store has no goroutine.
func (s *localStore) Start(*Group) error { return nil }

// Close does nothing and returns nil.
func (s *localStore) Close() error { return nil }

// Renew sets each direction's bucket to what the group left of the last
// lease, refills it to now's tick under the config it had, then, if cfg
// differs, clips it to cfg's burst and counts later ticks in cfg's tick
// length and rates. The first call starts each direction at its rate.
// The lease is the bucket.
func (s *localStore) Renew(now time.Time, cfg *Config, left [2]int64) (Lease, bool) {
	if !s.started {
		s.started = true
		s.cfg = *cfg
		for d := range Dir(2) {
			r, burst := cfg.rate(d)
			s.dirs[d].reset(r, burst, cfg.tickNanos(), now, r)
		}
		return s.lease(), true
	}
	for d := range Dir(2) {
		b := &s.dirs[d]
		b.set(left[d])
		b.refill(now)
	}
	if *cfg != s.cfg {
		for d := range Dir(2) {
			b := &s.dirs[d]
			r, burst := cfg.rate(d)
			b.reset(r, burst, cfg.tickNanos(), now, min(b.level(), burst))
		}
		s.cfg = *cfg
	}
	return s.lease(), true
}

func (s *localStore) lease() Lease {
	return Lease{Tick: s.dirs[Read].tick, Read: s.dirs[Read].level(), Write: s.dirs[Write].level()}
}

// localBucket is one direction of a localStore.
//
// The tokens live in an x/time/rate Limiter whose rate is the config's
// bytes per tick, expressed per second, and whose burst is the config's
// burst. It is only ever called at the start of the current tick
// (tickStart(tick)), so the refill it computes between two calls is a
// whole number of ticks times the rate, capped at the burst: libevent's
// stepped refill, not a continuous one. What members moved is a ReserveN
// that is never waited on, so the limiter's debt is libevent's deficit
// spending. Because every call happens under the group's mutex, at a time
// the group picks, the limiter's own locking never contends.
type localBucket struct {
	lim    *rate.Limiter
	rate   int64
	burst  int64
	tickNs int64
	// tick is the index of the current tick: the last refill.
	tick int64
	// extra holds tokens added by a negative decrement, which may take
	// the bucket past the burst and which a Limiter cannot hold. The
	// bucket level is the limiter's tokens plus extra; the next refill
	// clips the sum to the burst, as libevent's refill does.
	extra int64
}

// reset (re)builds the limiter for a new config, starting at level, which
// must not exceed burst.
func (b *localBucket) reset(r, burst, tickNs int64, now time.Time, level int64) {
	b.rate, b.burst, b.tickNs = r, burst, tickNs
	b.tick = tickIndex(now, tickNs)
	perSecond := rate.Limit(float64(r) * float64(time.Second) / float64(tickNs))
	// A new Limiter is full; take the difference to start at level.
	b.lim = rate.NewLimiter(perSecond, toInt(burst))
	b.extra = 0
	if level >= 0 {
		b.takeLimiter(burst - level)
	} else {
		b.takeLimiter(burst)
		b.takeLimiter(-level)
	}
}

// set brings the level to left: what the group's members left of the
// lease, after what they moved and the manual decrements (which may have
// added tokens).
func (b *localBucket) set(left int64) {
	switch diff := subSat(b.level(), left); {
	case diff > 0:
		b.take(diff)
	case diff < 0:
		b.extra = addSat(b.extra, subSat(0, diff))
	}
}

// refill moves the bucket to the tick of now, if that is a later tick.
// The limiter adds the rate for each tick crossed, capped at the burst;
// extra is then clipped so that the level does not exceed the burst
// either. A clock that went backwards changes nothing.
func (b *localBucket) refill(now time.Time) {
	idx := tickIndex(now, b.tickNs)
	if idx <= b.tick {
		return
	}
	b.tick = idx
	if b.extra > 0 {
		// With t <= burst the limiter's tokens and e >= 0 the extra,
		// min(min(t+n*rate, burst)+e, burst) == min(t+e+n*rate, burst).
		b.extra = min(b.extra, max(b.burst-b.tokens(), 0))
	}
}

// level returns the bucket: the limiter's tokens at the current tick plus
// extra. It can be negative.
func (b *localBucket) level() int64 {
	return addSat(b.tokens(), b.extra)
}

func (b *localBucket) tokens() int64 {
	return roundSat(b.lim.TokensAt(tickStart(b.tick, b.tickNs)))
}

// take removes n > 0 tokens, from extra first.
func (b *localBucket) take(n int64) {
	if b.extra >= n {
		b.extra -= n
		return
	}
	n -= b.extra
	b.extra = 0
	b.takeLimiter(n)
}

// takeLimiter reserves n tokens at the start of the current tick and never
// waits on the reservation, leaving the limiter in debt if it had fewer.
// ReserveN refuses n above the burst (its reservation is not OK and takes
// nothing). Splitting n into burst-sized pieces would loop n/burst times
// for a large manual decrement of a small bucket, so instead the burst is
// lifted for this one reservation; the caller holds the group's mutex, so
// no other call can see the lifted burst.
func (b *localBucket) takeLimiter(n int64) {
	if n <= 0 {
		return
	}
	t := tickStart(b.tick, b.tickNs)
	burst := b.lim.Burst()
	if n <= int64(burst) {
		b.lim.ReserveN(t, int(n))
		return
	}
	b.lim.SetBurstAt(t, toInt(n))
	b.lim.ReserveN(t, toInt(n))
	b.lim.SetBurstAt(t, burst)
}

// toInt converts a positive int64 to int, saturating where int is 32 bits.
func toInt(n int64) int {
	return int(min(n, math.MaxInt))
}

// roundSat rounds a token count to the nearest integer within [-Max, Max].
// Tokens are integers plus floating-point noise from the per-second rate,
// since only whole ticks elapse between calls.
func roundSat(f float64) int64 {
	r := math.Round(f)
	switch {
	case r >= math.MaxInt64:
		return Max
	case r <= -math.MaxInt64:
		return -Max
	}
	return int64(r)
}
