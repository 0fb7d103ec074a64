package limiter

import (
	"fmt"
	"sync"
	"time"

	"github.com/bevgo/bev/clock"
)

// DefaultMinShare is a new group's min share in bytes, libevent's default.
const DefaultMinShare = 64

// A Group is a rate-limit group, libevent's bufferevent_rate_limit_group:
// one token bucket per direction shared by all of its members.
//
// The bucket is what the group's [Store] grants it, tick by tick. With
// the in-process store of [NewGroup] it starts at the rate and gains the
// rate at every tick boundary, up to the burst, exactly as a [Bucket]
// does; its tokens are kept in one golang.org/x/time/rate Limiter per
// direction. A member's turn is its share of the bucket: the level at
// the start of the tick divided by the number of members, active or not,
// but at least the min share. Members wait for turns in a queue ordered
// by when each last had one, so they are served round-robin and none
// starves; the package doc says how. A turn not used by the end of its
// tick lapses.
//
// A Group is safe for concurrent use and, with the in-process store,
// starts no goroutine: the store is asked for each tick's lease lazily,
// by the first call in the tick, and a waiting member sleeps on a timer
// of its own. Close it when its last member has left.
type Group struct {
	clock clock.Clock

	mu       sync.Mutex // guards following, and every Member's fields
	cfg      Config
	minShare int64 // as configured
	share    int64 // effective: min(minShare, ReadRate, WriteRate)
	dirs     [2]budget
	members  int
	closed   bool
	store    Store
	leases   uint64 // leases granted by store
	// tickNs is cfg's tick length, and asked the tick of the local
	// clock of the last store.Renew.
	tickNs int64
	asked  int64
}

// GroupStats is a snapshot of a [Group].
type GroupStats struct {
	// ReadLimit and WriteLimit are the bucket levels, as [Group.Limit]
	// reports them.
	ReadLimit, WriteLimit int64
	// TotalRead and TotalWritten are the totals [Group.Totals] reports.
	TotalRead, TotalWritten int64
	// Members is the number of members.
	Members int
	// ReadWaiters and WriteWaiters count members queued for a turn.
	ReadWaiters, WriteWaiters int
	// MinShare is the effective min share.
	MinShare int64
	// Leases counts the leases the group's [Store] has granted: one
	// per tick in which the group was used, for the in-process store.
	Leases uint64
}

// NewGroup returns a group limited by a copy of cfg whose budget is kept
// in the process by the in-process [Store], with each direction starting
// at its rate and the min share at [DefaultMinShare] (or less, see
// [Group.SetMinShare]), on the system's clock unless an option
// ([WithClock]) gives another. A nil or invalid cfg gives an error
// wrapping [ErrInvalidConfig].
func NewGroup(cfg *Config, opts ...Option) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newGroup(cfg, &localStore{}, applyOptions(opts).clock)
}

// newGroup makes the group of a valid cfg on clock c (nil: the system's)
// and starts s.
func newGroup(cfg *Config, s Store, c clock.Clock) (*Group, error) {
	g := &Group{clock: c, cfg: *cfg, minShare: DefaultMinShare, store: s, tickNs: cfg.tickNanos()}
	g.share = g.effectiveShare()
	for d := range Dir(2) {
		g.dirs[d].newRound()
	}
	if err := s.Start(g); err != nil {
		return nil, fmt.Errorf("limiter: start store: %w", err)
	}
	g.mu.Lock()
	now := g.now()
	g.asked = tickIndex(now, g.tickNs)
	if l, ok := s.Renew(now, &g.cfg, [2]int64{}); ok {
		g.applyLocked(l, nil)
	}
	g.mu.Unlock()
	return g, nil
}

// now reads the group's clock (see timeOn): the system's when it has
// none of its own (no WithClock, a shared group, or a zero Group).
func (g *Group) now() time.Time { return timeOn(g.clock) }

// Join adds a member to the group and returns it. Joining makes every
// share smaller. After [Group.Close] it returns an error wrapping
// [ErrClosed], and on a Group not made by [NewGroup] or [NewSharedGroup]
// (a zero value, which has no config to share, or a nil pointer) one
// wrapping [ErrInvalid]. A stream moving to another group leaves this one
// first ([Member.Leave]) and joins the other.
func (g *Group) Join() (*Member, error) {
	if g == nil || g.store == nil {
		return nil, fmt.Errorf("%w: join a group not made by NewGroup or NewSharedGroup", ErrInvalid)
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, fmt.Errorf("%w: join", ErrClosed)
	}
	g.members++
	m := &Member{g: g}
	var wakes []wake
	for d := range Dir(2) {
		wakes = g.dispatchLocked(d, wakes)
	}
	g.mu.Unlock()
	signal(wakes)
	return m, nil
}

// Close retires the group, after which [Group.Join] fails. While members
// remain it changes nothing and returns an error wrapping [ErrGroupBusy]
// (libevent asserts instead); once it has succeeded, later calls return
// nil. No member can be waiting on a closed group, since none is left.
//
// The first time, it closes the group's [Store] and returns the store's
// error.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.members > 0 {
		g.mu.Unlock()
		return fmt.Errorf("%w (%d members)", ErrGroupBusy, g.members)
	}
	first := !g.closed
	g.closed = true
	g.mu.Unlock()
	if first && g.store != nil {
		if err := g.store.Close(); err != nil {
			return fmt.Errorf("limiter: close store: %w", err)
		}
	}
	return nil
}

// SetConfig replaces the group's config with a copy of cfg, libevent's
// bufferevent_rate_limit_group_set_cfg. The bucket is first refilled under
// the old config, then clipped down to the new burst; later ticks count
// in the new tick length and add the new rate. (The group's [Store]
// does this at [Store.Renew]; a store that grants with [Group.Grant]
// has the bucket clipped, and reads the new config for its next lease.)
// The min share is re-applied against the new rates. Turns granted under
// the old config lapse and waiting members are served again under the
// new one. A nil or invalid cfg gives an error wrapping
// [ErrInvalidConfig] and changes nothing.
func (g *Group) SetConfig(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.mu.Lock()
	now := g.now()
	l, ok := g.store.Renew(now, cfg, g.leftLocked())
	g.cfg = *cfg
	g.tickNs = cfg.tickNanos()
	g.asked = tickIndex(now, g.tickNs)
	g.share = g.effectiveShare()
	var wakes []wake
	if ok {
		wakes = g.applyLocked(l, wakes)
	} else {
		for d := range Dir(2) {
			b := &g.dirs[d]
			_, burst := cfg.rate(Dir(d))
			b.level = min(b.level, burst)
			b.newRound()
		}
	}
	wakes = g.rescheduleLocked(wakes)
	g.mu.Unlock()
	signal(wakes)
	return nil
}

// Config returns a copy of the group's config.
func (g *Group) Config() *Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.cfg
	return &c
}

// SetMinShare sets the min share, libevent's
// bufferevent_rate_limit_group_set_min_share: the least a member may move
// in one turn, however many members share the bucket, and the level the
// bucket must be back to before waiting members are served after it ran
// out. The effective value is the smallest of n and the two rates, and is
// re-applied by [Group.SetConfig]. A negative n gives an error wrapping
// [ErrInvalid].
func (g *Group) SetMinShare(n int64) error {
	if n < 0 {
		return fmt.Errorf("%w: min share %d is negative", ErrInvalid, n)
	}
	g.mu.Lock()
	g.minShare = n
	g.share = g.effectiveShare()
	wakes := g.rescheduleLocked(nil)
	g.mu.Unlock()
	signal(wakes)
	return nil
}

// MinShare returns the effective min share.
func (g *Group) MinShare() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.share
}

// Limit returns the group's bucket in direction d, libevent's
// bufferevent_rate_limit_group_get_read_limit and _write_limit. It can be
// negative. Like a libevent group, whose timer refills it at every tick,
// it includes the refills of the ticks that have passed. It is [Max] for
// an unknown d.
func (g *Group) Limit(d Dir) int64 {
	if !d.valid() {
		return Max
	}
	g.mu.Lock()
	wakes := g.refillLocked(g.now(), nil)
	l := g.dirs[d].level
	g.mu.Unlock()
	signal(wakes)
	return l
}

// Decrement takes n tokens from the group's bucket in direction d by hand,
// libevent's bufferevent_rate_limit_group_decrement_read and _write. The
// bucket may go below zero, which makes members wait; a negative n adds
// tokens, beyond the burst if it comes to that, until the next refill
// clips the bucket back to the burst, and serves waiting members the
// bucket now covers. Shares for the rest of the tick are computed from
// the new level. Totals are untouched. An unknown d does nothing.
//
// It changes the current lease of the group's [Store], and
// [Group.Demand] counts n as used, so that a store shared by processes
// takes it from (or, negative, gives it to) the shared budget when it
// settles the lease.
func (g *Group) Decrement(d Dir, n int64) {
	if !d.valid() || n == 0 {
		return
	}
	g.mu.Lock()
	wakes := g.refillLocked(g.now(), nil)
	b := &g.dirs[d]
	if n > 0 {
		b.take(n)
	} else {
		b.give(subSat(0, n))
	}
	b.used = addSat(b.used, n)
	b.roundLevel = b.level
	wakes = g.dispatchLocked(d, wakes)
	wakes = b.kickHead(wakes)
	g.mu.Unlock()
	signal(wakes)
}

// Totals returns the bytes members have consumed in each direction since
// the group was made or [Group.ResetTotals] was last called.
func (g *Group) Totals() (read, written int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dirs[Read].total, g.dirs[Write].total
}

// ResetTotals sets both totals to zero.
func (g *Group) ResetTotals() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dirs[Read].total, g.dirs[Write].total = 0, 0
}

// Members returns the number of members.
func (g *Group) Members() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.members
}

// Stats returns a snapshot of the group.
func (g *Group) Stats() GroupStats {
	g.mu.Lock()
	now := g.now()
	wakes := g.refillLocked(now, nil)
	s := GroupStats{
		ReadLimit:    g.dirs[Read].level,
		WriteLimit:   g.dirs[Write].level,
		TotalRead:    g.dirs[Read].total,
		TotalWritten: g.dirs[Write].total,
		Members:      g.members,
		ReadWaiters:  len(g.dirs[Read].queue),
		WriteWaiters: len(g.dirs[Write].queue),
		MinShare:     g.share,
		Leases:       g.leases,
	}
	g.mu.Unlock()
	signal(wakes)
	return s
}

func (g *Group) effectiveShare() int64 {
	return min(g.minShare, g.cfg.ReadRate, g.cfg.WriteRate)
}

// shareLocked returns one turn in b: the level at the start of the round
// divided among all members, at least the min share and at least 1.
func (g *Group) shareLocked(b *budget) int64 {
	return max(b.roundLevel/int64(max(g.members, 1)), g.share, 1)
}

// needLocked returns the least the bucket, less the turns granted this
// round, must hold for a new turn: the min share, and at least 1.
func (g *Group) needLocked() int64 {
	return max(g.share, 1)
}

// refillLocked asks the store for the lease of now's tick, if no call has
// in that tick yet, and serves the queues if it grants one.
func (g *Group) refillLocked(now time.Time, wakes []wake) []wake {
	idx := tickIndex(now, g.tickNs)
	if idx <= g.asked {
		return wakes
	}
	g.asked = idx
	if l, ok := g.store.Renew(now, &g.cfg, g.leftLocked()); ok {
		wakes = g.applyLocked(l, wakes)
	}
	return wakes
}

// leftLocked returns the bucket in each direction, for Store.Renew.
func (g *Group) leftLocked() [2]int64 {
	return [2]int64{g.dirs[Read].level, g.dirs[Write].level}
}

// dispatchLocked grants turns to waiters from the head of d's queue while
// the bucket, less the turns already granted this round, holds at least
// the min share; a turn is a share, or what is left if that is less. It
// passes over members that have already had their share this round; see
// serveLocked.
func (g *Group) dispatchLocked(d Dir, wakes []wake) []wake {
	return g.serveLocked(d, wakes, false)
}

// serveLocked is dispatchLocked, serving members that have already had
// their share this round too if repeat is set.
//
// A member that has had its share this tick and wants more yields to
// every member asking at the same moment, as libevent's event loop serves
// each ready stream once per pass. serveLocked passes over it unless
// repeat is set, which the head of the queue does when its own
// shortest-possible timer fires (see untilTurnLocked), after the
// goroutines that were ready to run have had their go. Under
// testing/synctest that is exact; in real time it is a yield, which is all
// a loop doing real I/O between turns needs. Without it, the first
// goroutine to run after a refill, in a tight loop, could take the whole
// tick before the others asked.
//
// Granted waiters leave the queue and their ready channels are closed (by
// signal, after the caller unlocks); a new head is kicked so that it arms
// its timer.
func (g *Group) serveLocked(d Dir, wakes []wake, repeat bool) []wake {
	b := &g.dirs[d]
	if len(b.queue) == 0 {
		return wakes
	}
	s, need := g.shareLocked(b), g.needLocked()
	avail := subSat(b.level, b.outstanding)
	head := b.queue[0]
	kept := b.queue[:0]
	for _, w := range b.queue {
		if avail < need || !repeat && w.m.hadShareLocked(d, s) {
			kept = append(kept, w)
			continue
		}
		turn := min(s, avail)
		avail -= turn
		w.queued = false
		w.m.waiting[d] = nil
		b.seq++
		w.m.grant[d] = turn
		w.m.grantRound[d] = b.round
		w.m.grantSeq[d] = b.seq
		b.outstanding = addSat(b.outstanding, turn)
		w.released = true
		wakes = append(wakes, wake{w: w, ready: true})
	}
	clear(b.queue[len(kept):])
	b.queue = kept
	if len(kept) > 0 && kept[0] != head {
		wakes = b.kickHead(wakes)
	}
	return wakes
}

// rescheduleLocked serves both queues and kicks both heads, after a change
// that moves the time of the next turn.
func (g *Group) rescheduleLocked(wakes []wake) []wake {
	for d := range Dir(2) {
		wakes = g.dispatchLocked(d, wakes)
		wakes = g.dirs[d].kickHead(wakes)
	}
	return wakes
}

// untilTurnLocked returns when w, the head of b's queue, looks again:
// at once, after the goroutines that are ready to run have gone first
// (yield), if it only waits because it already had its share this round;
// otherwise at the next tick boundary of the group's clock, where the
// store may grant the next lease (a store that grants with [Group.Grant]
// kicks the head sooner).
func (g *Group) untilTurnLocked(b *budget, w *waiter, d Dir, now time.Time) (due time.Time, yield bool) {
	if w.m.hadShareLocked(d, g.shareLocked(b)) && subSat(b.level, b.outstanding) >= g.needLocked() {
		return time.Time{}, true
	}
	return now.Add(untilTick(now, tickIndex(now, g.tickNs), 1, g.tickNs)), false
}
