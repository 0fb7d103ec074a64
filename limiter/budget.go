package limiter

// budget is one direction of a group's bucket, with the queue of members
// waiting for a turn in that direction. Its owner's mutex guards it.
//
// The bucket is the level the group's [Store] granted with its last
// lease, less what members moved and manual decrements since (plus what
// a store added within the tick). The store alone refills it: the group
// replaces it with each new lease.
type budget struct {
	// level is the bucket; it can be negative (a debt, which members
	// wait out).
	level int64
	// tick is the tick of the last lease, in the store's clock.
	tick int64

	// round counts leases and reconfigurations; a member's turn is
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

	// used counts bytes consumed and manual decrements since the last
	// Group.TakeDemand, and active the members that consumed some since
	// the last lease; both for a Store (Group.Demand).
	used   int64
	active int
	// queue holds members waiting for a turn, ordered by the turn each
	// last had (by key), then by arrival.
	queue []*waiter
	// seq numbers turns, for the queue's order.
	seq uint64
}

func (b *budget) newRound() {
	b.round++
	b.outstanding = 0
	b.roundLevel = b.level
}

// take removes n > 0 tokens.
func (b *budget) take(n int64) {
	b.level = subSat(b.level, n)
}

// give adds n > 0 tokens, without any cap.
func (b *budget) give(n int64) {
	b.level = addSat(b.level, n)
}
