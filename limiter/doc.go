// Package limiter is bev's rate limiting: libevent's token buckets and
// rate-limit groups, made safe for goroutines. A [Bucket] limits one
// stream; a [Group] shares one budget, which a [Store] grants it tick by
// tick, among its members, handing each a fair share; both count bytes
// per tick of a [Config] and let an I/O loop ask how much it may move
// ([Meter.Allow]), block until it may move something ([Meter.Wait]) and
// record what it moved ([Meter.Consume]). The package starts no goroutine
// of its own: a blocked Wait sleeps on a timer of its own, stopped before
// it returns, so nothing here can leak. Time is read, and timers armed, on
// the system's clock, or on the [github.com/bevgo/bev/clock.Clock] given
// by [WithClock] (a bufferevent gives its own bucket its Base's clock).
//
// # Buckets
//
// A bucket holds a signed level per direction. It starts at the rate,
// gains the rate at every tick boundary (ticks are absolute multiples of
// the tick length, as in libevent) up to the burst, and loses what was
// consumed. One operation may take it below zero; it then stays empty
// until enough ticks have passed. Refill is lazy, done by each call.
//
// # Groups
//
// A group's members share its bucket, which refills like a bucket's. A
// member may move its share per turn: the bucket at the start of the
// current tick divided by the number of members, active or not, but at
// least the min share (64 bytes by default, never more than the group's
// rates), so that a tight group makes fewer, larger writes. A member that
// cannot have a turn at once queues in [Member.Wait]. Whenever the bucket,
// less the turns already granted, holds at least the min share again,
// queued members are granted turns for the current tick, a share each (or
// what is left, if less), the member whose last turn was longest ago
// first.
//
// That makes the queue a round-robin: between two turns of one member,
// every other member that was waiting gets one, so none starves and, over
// any stretch of time, members that keep asking move the same amount to
// within one share. A member's second turn within a tick also waits until
// the goroutines ready to run at that moment have asked, the way an event
// loop serves each ready stream once per pass. The group still never idles
// while someone asks: a member alone gets every turn. libevent lets every
// member race for the bucket, starting from a random one, and gets this
// fairness only on average.
//
// # Where a group's budget is kept
//
// A group does not refill itself: each tick its [Store] grants it a
// [Lease], what its members in this process may move, which they share
// as above. [NewGroup] gives it the in-process store, which keeps the
// bucket in golang.org/x/time/rate limiters and answers at the first
// call in each tick, so that the group refills like a bucket and starts
// no goroutine. A group made by [NewSharedGroup] takes another store:
// package limiter/redisgroup keeps the budget in Redis, so that any
// number of processes share one budget; this package never imports a
// network client.
//
// # Using a Meter
//
// A reader loop looks like this, with the actor's own cap on one read:
//
//	for {
//		n := m.Allow(limiter.Read)
//		if n == 0 {
//			if err := m.Wait(ctx, limiter.Read); err != nil {
//				return err
//			}
//			continue
//		}
//		got, err := conn.Read(buf[:min(n, int64(len(buf)))])
//		m.Consume(limiter.Read, got)
//		...
//	}
package limiter
