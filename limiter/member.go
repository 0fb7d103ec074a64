package limiter

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// A Member is one stream's place in a [Group], made by [Group.Join]. It
// implements [Meter] against the group's shared bucket, so an I/O loop
// treats it like a [Bucket]; a stream with both a bucket and a group
// membership is limited by the smaller of the two Allow values.
//
// A Member is safe for concurrent use. After [Member.Leave] it no longer
// limits anything: Allow reports [Max], Wait returns nil at once and
// Consume does nothing.
type Member struct {
	g *Group

	// Guarded by g.mu.
	left       bool
	grant      [2]int64  // this member's turn, if granted
	grantRound [2]uint64 // the round the turn is valid in
	grantSeq   [2]uint64 // the turn's number
	servedSeq  [2]uint64 // the number of the last turn used, 0 if none
	used       [2]int64  // bytes consumed in round usedRound
	usedRound  [2]uint64
	waiting    [2]*waiter
}

// waiter is a member's place in a queue. Goroutines waiting for the same
// member and direction share one waiter.
type waiter struct {
	m *Member
	// key is the member's last turn when it queued; see enqueueLocked.
	key uint64
	// ready is closed when the member is granted a turn or leaves.
	ready chan struct{}
	// kick (buffered, one slot) tells a waiter that it became the head of
	// the queue or that the time of the next turn moved, so it re-arms
	// its timer.
	kick chan struct{}

	// Guarded by the group's mutex.
	queued   bool // in the queue
	released bool // ready is, or is about to be, closed
	refs     int  // goroutines waiting on this waiter
}

// wake is a channel operation decided under the group's mutex and done
// after it is released.
type wake struct {
	w     *waiter
	ready bool // close w.ready; otherwise kick w
}

func signal(wakes []wake) {
	for _, wk := range wakes {
		if wk.ready {
			close(wk.w.ready)
			continue
		}
		select {
		case wk.w.kick <- struct{}{}:
		default:
		}
	}
}

// kickHead appends a kick of the head of the queue, if there is one.
func (b *budget) kickHead(wakes []wake) []wake {
	if len(b.queue) > 0 {
		wakes = append(wakes, wake{w: b.queue[0]})
	}
	return wakes
}

// Leave removes the member from its group, libevent's
// bufferevent_remove_from_rate_limit_group. Every share grows; a turn the
// member held goes back to the group; goroutines blocked in
// [Member.Wait] return nil, since the member is no longer limited. Later
// calls do nothing.
func (m *Member) Leave() {
	g := m.g
	g.mu.Lock()
	if m.left {
		g.mu.Unlock()
		return
	}
	m.left = true
	g.members--
	var wakes []wake
	for d := range Dir(2) {
		m.dropTurnLocked(d)
		if w := m.waiting[d]; w != nil {
			wakes = g.dequeueLocked(w, d, wakes)
			if !w.released {
				w.released = true
				wakes = append(wakes, wake{w: w, ready: true})
			}
		}
		wakes = g.dispatchLocked(d, wakes)
	}
	g.mu.Unlock()
	signal(wakes)
}

// Allow reports how many bytes the member's next single operation in
// direction d may move now: its turn, if it was granted one this tick;
// otherwise what is left of its share for this tick, if nobody is queued
// ahead of it, capped by the group's bucket less the turns granted and
// not yet used, provided that is at least the min share; otherwise 0,
// which means wait. More than a share in one tick is always had through
// [Member.Wait], which serves everyone asking meanwhile first. Allow never
// returns a negative number. It is [Max] after Leave or for an unknown d.
func (m *Member) Allow(d Dir) int64 {
	if !d.valid() {
		return Max
	}
	g := m.g
	g.mu.Lock()
	wakes := g.refillLocked(g.now(), nil)
	n := m.allowLocked(d)
	g.mu.Unlock()
	signal(wakes)
	return n
}

func (m *Member) allowLocked(d Dir) int64 {
	if m.left {
		return Max
	}
	g := m.g
	b := &g.dirs[d]
	if m.grant[d] > 0 && m.grantRound[d] == b.round {
		return m.grant[d]
	}
	s := g.shareLocked(b)
	if m.hadShareLocked(d, s) {
		// More than a share in one tick goes through the queue, behind
		// everyone asking meanwhile (see Group.serveLocked).
		return 0
	}
	if len(b.queue) > 0 && !b.queue[0].m.hadShareLocked(d, s) {
		// Others are queued ahead of this member; taking a turn now
		// would overtake them. (Members queued for a second share sort
		// behind it, so they do not count.)
		return 0
	}
	// What is left of the share, as far as the bucket covers it, but
	// nothing while the bucket is under the min share, unless that is
	// more than is left.
	rest := s - m.usedLocked(d)
	n := min(rest, subSat(b.level, b.outstanding))
	if n < min(rest, g.needLocked()) {
		return 0
	}
	return n
}

// usedLocked returns what m has consumed in d during the current round.
func (m *Member) usedLocked(d Dir) int64 {
	if m.usedRound[d] != m.g.dirs[d].round {
		return 0
	}
	return m.used[d]
}

// hadShareLocked reports whether m has consumed at least share s in d
// during the current round.
func (m *Member) hadShareLocked(d Dir, s int64) bool {
	return m.usedLocked(d) >= s
}

// Consume records that n bytes moved in direction d: the group's bucket
// drops by n, possibly below zero, and the group's total grows by n.
// Consume ends the member's turn, so call it after every operation, with
// 0 if nothing moved, and a turn that was not used up goes back to the
// group. A negative n counts as 0. Consume does nothing after Leave or for
// an unknown d.
func (m *Member) Consume(d Dir, n int) {
	if !d.valid() {
		return
	}
	g := m.g
	g.mu.Lock()
	if m.left {
		g.mu.Unlock()
		return
	}
	wakes := g.refillLocked(g.now(), nil)
	b := &g.dirs[d]
	if n > 0 {
		if m.usedRound[d] != b.round || m.used[d] == 0 {
			b.active++
		}
		b.take(int64(n))
		b.used = addSat(b.used, int64(n))
		b.total = addSat(b.total, int64(n))
		m.used[d] = addSat(m.usedLocked(d), int64(n))
		m.usedRound[d] = b.round
	}
	switch {
	case m.grant[d] > 0 && m.grantRound[d] == b.round:
		// A granted turn, numbered when granted so that the queue's
		// order does not depend on which goroutine got here first.
		m.servedSeq[d] = m.grantSeq[d]
		m.dropTurnLocked(d)
		wakes = g.dispatchLocked(d, wakes)
	case n > 0:
		// A turn taken without queueing, or a granted one that lapsed
		// while the operation ran.
		m.grant[d] = 0
		b.seq++
		m.servedSeq[d] = b.seq
	}
	g.mu.Unlock()
	signal(wakes)
}

// Wait blocks until [Member.Allow] for d would return more than 0, or ctx
// ends; it returns nil at once if Allow already would. A member that must
// wait joins d's queue (behind every member whose last turn is older) and
// is woken when its turn is granted, when it leaves the group, or when ctx
// ends. It sleeps on a timer of its own only while it is at the head of
// the queue, and stops it before returning. If ctx ends first, Wait
// returns an error wrapping ctx.Err() (so errors.Is with context.Canceled
// or context.DeadlineExceeded works) and the context's cause, and gives
// back a turn granted meanwhile. An unknown d gives an error wrapping
// [ErrInvalid].
//
// Wait is meant for one goroutine per member and direction (an actor's
// reader or writer loop); several may wait, and then share one place in
// the queue and one turn.
func (m *Member) Wait(ctx context.Context, d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: wait on direction %v", ErrInvalid, d)
	}
	g := m.g
	var (
		w     *waiter
		sleep alarm
	)
	defer sleep.stop()
	fired := false
	for {
		g.mu.Lock()
		now := g.now()
		wakes := g.refillLocked(now, nil)
		if fired && w != nil && w.queued && g.dirs[d].queue[0] == w {
			// The head's timer: serve members that want more than their
			// share this round, now that ready goroutines have had their go.
			wakes = g.serveLocked(d, wakes, true)
		}
		fired = false
		if m.allowLocked(d) == 0 && (w == nil || w.released) {
			// First time round, or a turn was granted but lapsed at a
			// tick boundary before this goroutine ran. Queue again; a
			// lapsed turn does not count as served, so the member keeps
			// its place in the order.
			if w != nil {
				wakes = g.unrefLocked(w, d, wakes)
			}
			w = g.enqueueLocked(m, d)
			wakes = g.dispatchLocked(d, wakes)
		}
		if m.allowLocked(d) > 0 {
			if w != nil {
				wakes = g.unrefLocked(w, d, wakes)
			}
			g.mu.Unlock()
			signal(wakes)
			return nil
		}
		b := &g.dirs[d]
		// Only the head of the queue sleeps on a timer: the rest are
		// served after it, so they wait for ready or for a kick saying
		// they have become the head.
		head := b.queue[0] == w
		var (
			due   time.Time
			yield bool
		)
		if head {
			due, yield = g.untilTurnLocked(b, w, d, now)
		}
		g.mu.Unlock()
		signal(wakes)

		var tick <-chan struct{}
		switch {
		case yield:
			tick = sleep.yield()
		case head:
			tick = sleep.at(g.clock, due)
		default:
			sleep.stop()
		}
		select {
		case <-ctx.Done():
			g.mu.Lock()
			wakes := g.unrefLocked(w, d, nil)
			if w.refs == 0 {
				m.dropTurnLocked(d)
				wakes = g.dispatchLocked(d, wakes)
			}
			g.mu.Unlock()
			signal(wakes)
			return waitError(ctx)
		case <-w.ready:
		case <-w.kick:
		case <-tick:
			fired = true
		}
	}
}

// enqueueLocked returns m's waiter for d, queueing a new one if m has
// none.
//
// The queue is ordered by the number of the last turn each member used,
// then by arrival: the member served longest ago (or never) goes first.
// Plain first-in, first-out order is not enough: members granted turns in
// the same batch queue again in whatever order their goroutines happen to
// run, so a member that is always quick to come back would overtake its
// batch-mates round after round and drift ahead. Ordering by last turn
// makes the queue an exact round-robin: between two turns of a member,
// every other member that was waiting gets one.
func (g *Group) enqueueLocked(m *Member, d Dir) *waiter {
	if w := m.waiting[d]; w != nil {
		w.refs++
		return w
	}
	w := &waiter{
		m:      m,
		key:    m.servedSeq[d],
		ready:  make(chan struct{}),
		kick:   make(chan struct{}, 1),
		queued: true,
		refs:   1,
	}
	b := &g.dirs[d]
	// Insert after every waiter whose key is not larger; a scan from the
	// back is short when, as usual, the newcomer was served last.
	i := len(b.queue)
	for i > 0 && b.queue[i-1].key > w.key {
		i--
	}
	// A waiter inserted at the head arms its own timer when its Wait
	// loop goes round; the old head's timer firing early is harmless.
	b.queue = slices.Insert(b.queue, i, w)
	m.waiting[d] = w
	return w
}

// unrefLocked drops one goroutine's hold on w and, with the last one,
// takes w out of the queue.
func (g *Group) unrefLocked(w *waiter, d Dir, wakes []wake) []wake {
	w.refs--
	if w.refs > 0 {
		return wakes
	}
	return g.dequeueLocked(w, d, wakes)
}

// dequeueLocked takes w out of d's queue if it is there, kicking the new
// head if w was the head.
func (g *Group) dequeueLocked(w *waiter, d Dir, wakes []wake) []wake {
	if !w.queued {
		return wakes
	}
	b := &g.dirs[d]
	i := slices.Index(b.queue, w)
	b.queue = slices.Delete(b.queue, i, i+1)
	w.queued = false
	w.m.waiting[d] = nil
	if i == 0 {
		wakes = b.kickHead(wakes)
	}
	return wakes
}

// dropTurnLocked ends m's turn in d, giving what is left of it back to the
// group if it is still valid.
func (m *Member) dropTurnLocked(d Dir) {
	b := &m.g.dirs[d]
	if m.grant[d] > 0 && m.grantRound[d] == b.round {
		b.outstanding -= m.grant[d]
	}
	m.grant[d] = 0
}
