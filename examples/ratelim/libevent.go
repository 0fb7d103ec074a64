package main

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/bevgo/bev/clock"
	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/limiter/redisgroup"
)

// newGroup makes the group limited by cfg: in the process, or in Redis
// with -group-redis (under -group-name, or a name of its own, so that a
// run never inherits a bucket an earlier one left in Redis). An
// in-process group tells the time on clk, the clock of the Base its
// sockets run on.
//
// Counted libevent's way, the group starts empty. libevent's group
// bucket starts at its rate, but its refill timer runs every tick from
// the group's creation, so in test-ratelim's window (-d less 5 ms) it
// fires one time fewer than there are ticks in -d: start-up bucket and
// refills add up to exactly -d's worth. bev refills at the tick
// boundaries of the clock, and a window that starts mid-tick crosses as
// many boundaries as -d has ticks (see startAligned): an empty start
// makes the same -d's worth. A Redis group's bucket starts empty anyway.
func newGroup(o *options, cfg *limiter.Config, clk clock.Clock) (*limiter.Group, error) {
	if o.redisURL != "" {
		name := o.groupName
		if name == "" {
			var b [6]byte
			rand.Read(b[:])
			name = "ratelim-" + hex.EncodeToString(b[:])
		}
		g, _, err := redisgroup.NewGroup(cfg, redisgroup.Options{URL: o.redisURL, Name: name})
		return g, err
	}
	g, err := limiter.NewGroup(cfg, limiter.WithClock(clk))
	if err != nil {
		return nil, err
	}
	if o.libeventWindow {
		g.Decrement(limiter.Read, cfg.ReadRate)
		g.Decrement(limiter.Write, cfg.WriteRate)
	}
	return g, nil
}

// startAligned waits, counting libevent's way, until half a tick past a
// tick boundary, where the clock of the window starts: the window, -d
// less 5 ms, then holds -d's number of tick boundaries, the last half a
// tick before its end, so that the bytes of every refill in it have
// arrived when it ends, and none of a refill outside it. measure calls
// it once every connection is up, and then makes the group and gives
// every server end its limits and starts it (startServing), all before
// the next boundary: no refill falls between the group's start and the
// window's, and every member has joined the group and asks before the
// first refill, which is shared among all of them, as every later one
// is. (The server ends used to start reading once up, after a window
// started before they connected: under load set-up took 55-117 ms, a
// refill came in it, and the ends that started first took it turn after
// turn; the shares' deviation came out 85-355 B/s against 20.)
func startAligned(tick time.Duration) {
	at := nextAt(time.Now(), tick, tick/2)
	timer := time.NewTimer(time.Until(at))
	defer timer.Stop()
	<-timer.C
}

// leaseTrouble returns, for a group in Redis, how many of its leases so
// far came late or failed: the machine starved the store or Redis, as a
// stall of the process starves the members, and the window's refills
// may not all have been handed out in it. It is 0 for other groups.
func leaseTrouble(g *limiter.Group) uint64 {
	if g == nil {
		return 0
	}
	s, ok := g.Store().(*redisgroup.Store)
	if !ok {
		return 0
	}
	st := s.Stats()
	return st.Late + st.Errors
}
