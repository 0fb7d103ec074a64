package limiter

import (
	"math"
	"time"
)

// maxWait bounds a single timer so that tick arithmetic cannot overflow
// when a bucket is deep in debt; a waiter whose turn is further away than
// this simply waits again.
const maxWait = time.Duration(1 << 60)

// tickIndex returns floor(t / tick): ticks line up on absolute multiples of
// the tick, as in libevent, not on when a bucket was made.
func tickIndex(t time.Time, tickNs int64) int64 {
	ns := t.UnixNano()
	q := ns / tickNs
	if ns%tickNs < 0 {
		q--
	}
	return q
}

// untilTick returns how long from now until k ticks after tick idx begin,
// capped at maxWait and floored at zero.
func untilTick(now time.Time, idx int64, k uint64, tickNs int64) time.Duration {
	if k > uint64(maxWait)/uint64(tickNs) {
		return maxWait
	}
	d := time.Duration((idx+int64(k))*tickNs - now.UnixNano())
	return min(max(d, 0), maxWait)
}

// ticksToReach returns how many refills of rate bring level to at least
// target, for level < target. It cannot overflow: both are within
// [-Max, Max], so target-level fits in a uint64.
func ticksToReach(level, target, rate int64) uint64 {
	need := uint64(target) - uint64(level)
	return (need + uint64(rate) - 1) / uint64(rate)
}

// refill is libevent's ev_token_bucket_update_ for one direction: the level
// after n whole ticks of rate, capped at burst, computed without overflow.
// A level above burst (after a negative decrement) drops to burst.
func refill(level, rate, burst, n int64) int64 {
	if n <= 0 {
		return level
	}
	if level >= burst {
		return burst
	}
	room := uint64(burst) - uint64(level)
	if room/uint64(n) < uint64(rate) {
		return burst
	}
	// level + n*rate <= burst, so the wrapped sum is exact.
	return int64(uint64(level) + uint64(n)*uint64(rate))
}

// addSat returns a+b clamped to [-Max, Max].
func addSat(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return Max
	case b < 0 && s > a, s < -Max:
		return -Max
	}
	return s
}

// subSat returns a-b clamped to [-Max, Max].
func subSat(a, b int64) int64 {
	if b == math.MinInt64 {
		return addSat(addSat(a, Max), 1)
	}
	return addSat(a, -b)
}

// tickStart returns the time tick idx begins.
func tickStart(idx, tickNs int64) time.Time {
	return time.Unix(0, idx*tickNs)
}
