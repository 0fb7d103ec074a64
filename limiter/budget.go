package limiter

import (
	"math"
	"time"

	"golang.org/x/time/rate"
)

// budget is one direction of a group's bucket, with the queue of members
// waiting for a turn in that direction. Its owner's mutex guards it.
//
// The tokens live in an x/time/rate Limiter whose rate is the config's
// bytes per tick, expressed per second, and whose burst is the config's
// burst. It is only ever called at the start of the current tick
// (tickStart(tick)), so the refill it computes between two calls is a
// whole number of ticks times the rate, capped at the burst: libevent's
// stepped refill, not a continuous one. Consumption is a ReserveN that is
// never waited on, so the limiter's debt is libevent's deficit spending.
// Because every call happens under the owner's mutex, at a time the owner
// picks, the limiter's own locking never contends and its reservations
// never race other members between a check and a take.
type budget struct {
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

	// round counts refills and reconfigurations; a member's turn is
	// valid for the round in which it was granted.
	round uint64
	// roundLevel is the level at the start of the round (or after a
	// manual decrement), from which members' shares are computed.
	roundLevel int64
	// outstanding is the sum of turns granted this round and not yet
	// consumed.
	outstanding int64
	// total counts bytes consumed by members since creation or reset.
	total int64

	// leased is set for a group with a Store: the bucket is extra alone,
	// filled only by Group.Grant, and the limiter is not used.
	leased bool
	// used counts bytes consumed since the last lease, and active the
	// members that consumed some; both only for a Store (Group.Demand).
	used   int64
	active int
	// queue holds members waiting for a turn, ordered by the turn each
	// last had (by key), then by arrival.
	queue []*waiter
	// seq numbers turns, for the queue's order.
	seq uint64
}

// reset (re)builds the limiter for a new config, starting at level, which
// must not exceed burst, and starts a new round.
func (b *budget) reset(r, burst, tickNs int64, now time.Time, level int64) {
	b.rate, b.burst, b.tickNs = r, burst, tickNs
	if b.leased {
		b.extra = level
		b.newRound()
		return
	}
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
	b.newRound()
}

func (b *budget) newRound() {
	b.round++
	b.outstanding = 0
	b.roundLevel = b.level()
}

// refill moves the budget to the tick of now, if that is a later tick,
// and reports whether it did. The limiter adds the rate for each tick
// crossed, capped at the burst; extra is then clipped so that the level
// does not exceed the burst either. A clock that went backwards changes
// nothing.
func (b *budget) refill(now time.Time) bool {
	if b.leased {
		return false
	}
	idx := tickIndex(now, b.tickNs)
	if idx <= b.tick {
		return false
	}
	b.tick = idx
	if b.extra > 0 {
		// With t <= burst the limiter's tokens and e >= 0 the extra,
		// min(min(t+n*rate, burst)+e, burst) == min(t+e+n*rate, burst).
		b.extra = min(b.extra, max(b.burst-b.tokens(), 0))
	}
	b.newRound()
	return true
}

// level returns the bucket: the limiter's tokens at the current tick plus
// extra. It can be negative.
func (b *budget) level() int64 {
	if b.leased {
		return b.extra
	}
	return addSat(b.tokens(), b.extra)
}

func (b *budget) tokens() int64 {
	return roundSat(b.lim.TokensAt(tickStart(b.tick, b.tickNs)))
}

// take removes n > 0 tokens, from extra first.
func (b *budget) take(n int64) {
	if b.leased {
		b.extra = subSat(b.extra, n)
		return
	}
	if b.extra >= n {
		b.extra -= n
		return
	}
	n -= b.extra
	b.extra = 0
	b.takeLimiter(n)
}

// give adds n > 0 tokens, without the burst cap.
func (b *budget) give(n int64) {
	b.extra = addSat(b.extra, n)
}

// takeLimiter reserves n tokens at the start of the current tick and never
// waits on the reservation, leaving the limiter in debt if it had fewer.
// ReserveN refuses n above the burst (its reservation is not OK and takes
// nothing). Splitting n into burst-sized pieces would loop n/burst times
// for a large manual decrement of a small bucket, so instead the burst is
// lifted for this one reservation; the caller holds the owner's mutex, so
// no other call can see the lifted burst.
func (b *budget) takeLimiter(n int64) {
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
