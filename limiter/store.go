package limiter

import (
	"fmt"
	"time"
)

// A Store keeps a group's budget somewhere other than in the process,
// typically shared by several processes (package limiter/redisgroup keeps
// it in Redis). A group made by [NewSharedGroup] does not refill its
// bucket itself: at every tick the store decides what the tick may spend
// here, what the members in this process may move, and hands it to the
// group with [Group.Grant]. The group then serves its own members exactly
// as an in-process group does (round robin, the min share), from that
// lease. A group made by [NewGroup] keeps its budget in the process, in
// x/time/rate limiters, and has no Store.
//
// The limiter package never talks to a network: a Store that does lives
// in a package of its own, so that programs that do not use it do not
// import its client.
type Store interface {
	// Start is called once, by NewSharedGroup, with the new group. From
	// then on the store calls g.Grant at every tick, from a goroutine
	// of its own, reading what it needs of the group with [Group.Demand]
	// and [Group.Config]. An error makes NewSharedGroup fail with it.
	Start(g *Group) error
	// Close stops the grants and returns once every goroutine the store
	// started has returned. [Group.Close] calls it once, after the last
	// member has left, and returns its error.
	Close() error
}

// A Lease is what one tick may spend in this process: the bytes the
// group's members here may move in each direction, until the next lease.
type Lease struct {
	// Tick is the index of the tick the lease is for, in the store's
	// clock: the time since the Unix epoch divided by the tick length.
	Tick int64
	// Read and Write are the bytes granted in each direction; 0 or less
	// grants nothing.
	Read, Write int64
}

// Demand is what a group's members in this process did in the current
// lease, for a [Store] to ask for the next one.
type Demand struct {
	// Members is the number of members in the process.
	Members int
	// Active counts, per direction, the members that moved bytes since
	// the last lease or are waiting for a turn now: a member that only
	// idles wants nothing and is not counted.
	Active [2]int
	// Used is the bytes members moved (and manual decrements), per
	// direction, since the last [Group.TakeDemand].
	Used [2]int64
	// Waiting counts, per direction, the members queued for a turn now.
	Waiting [2]int
}

// NewSharedGroup returns a group limited by a copy of cfg whose budget is
// kept by s: its bucket starts empty and fills only by the leases s
// grants ([Group.Grant]), one per tick, so members wait until the first
// one. Everything else (joining, turns, min share, totals) works as in a
// group from [NewGroup]. [Group.Close] closes s. A nil or invalid cfg
// gives an error wrapping [ErrInvalidConfig], a nil s one wrapping
// [ErrInvalid], and an error from s.Start is returned wrapped.
func NewSharedGroup(cfg *Config, s Store) (*Group, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalid)
	}
	g, err := NewGroup(cfg)
	if err != nil {
		return nil, err
	}
	g.store = s
	for d := range Dir(2) {
		b := &g.dirs[d]
		b.leased = true
		b.extra = 0
		b.newRound()
	}
	if err := s.Start(g); err != nil {
		return nil, fmt.Errorf("limiter: start store: %w", err)
	}
	return g, nil
}

// Grant gives the group of [NewSharedGroup] the lease l: in each
// direction the bucket becomes the lease, a new round starts and waiting
// members are served. What the last lease did not use lapses, and a debt
// it left (a manual [Group.Decrement] beyond it) is not carried: the
// store settles both against the shared budget, from
// [Group.TakeDemand]. The count of active members starts again. A store
// calls it once per tick; on a group from [NewGroup], or a closed one, it
// does nothing.
func (g *Group) Grant(l Lease) {
	g.mu.Lock()
	if g.store == nil || g.closed {
		g.mu.Unlock()
		return
	}
	var wakes []wake
	for d, n := range [2]int64{l.Read, l.Write} {
		b := &g.dirs[d]
		b.extra = max(n, 0)
		b.tick = l.Tick
		b.active = 0
		b.newRound()
		wakes = g.dispatchLocked(Dir(d), wakes)
		wakes = b.kickHead(wakes)
	}
	g.leases++
	g.mu.Unlock()
	signal(wakes)
}

// AddLease adds read and write bytes to the current lease of a group from
// [NewSharedGroup], for a store that grants more within a tick (what
// other processes left unused), and serves waiting members. Shares for
// the rest of the tick are computed from the new level; [Group.Demand]
// counts on. Amounts of 0 or less add nothing; on a group from
// [NewGroup], or a closed one, it does nothing.
func (g *Group) AddLease(read, write int64) {
	g.mu.Lock()
	if g.store == nil || g.closed {
		g.mu.Unlock()
		return
	}
	var wakes []wake
	for d, n := range [2]int64{read, write} {
		if n <= 0 {
			continue
		}
		b := &g.dirs[d]
		b.give(n)
		b.roundLevel = b.level()
		wakes = g.dispatchLocked(Dir(d), wakes)
		wakes = b.kickHead(wakes)
	}
	g.mu.Unlock()
	signal(wakes)
}

// Reclaim takes back, from a group of [NewSharedGroup], what its members
// will not use of the current lease in direction d, for a store to
// return to the shared budget: the lease less what was used and the turns
// granted and not yet used, if no member is waiting in d (a waiting
// member would use it). It returns the bytes taken back, which
// [Group.Demand] does not count as used. On a group from [NewGroup], a
// closed one, or for an unknown d, it returns 0.
func (g *Group) Reclaim(d Dir) int64 {
	if !d.valid() {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &g.dirs[d]
	if g.store == nil || g.closed || len(b.queue) > 0 {
		return 0
	}
	n := subSat(b.level(), b.outstanding)
	if n <= 0 {
		return 0
	}
	b.take(n)
	b.roundLevel = b.level()
	return n
}

// Demand returns what the group's members did since the last
// [Group.Grant] (or since the group was made), for a [Store].
func (g *Group) Demand() Demand {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.demandLocked()
}

func (g *Group) demandLocked() Demand {
	dm := Demand{Members: g.members}
	for d := range Dir(2) {
		b := &g.dirs[d]
		dm.Used[d] = b.used
		dm.Waiting[d] = len(b.queue)
		dm.Active[d] = b.active
		for _, w := range b.queue {
			if w.m.usedRound[d] != b.round || w.m.used[d] == 0 {
				dm.Active[d]++
			}
		}
	}
	return dm
}

// TakeDemand is [Group.Demand] that also starts the count of bytes used
// again, at the same moment: a store reports each byte used exactly once,
// in the settlement it asks for next, even one moved between the call
// and the lease that follows it.
func (g *Group) TakeDemand() Demand {
	g.mu.Lock()
	defer g.mu.Unlock()
	dm := g.demandLocked()
	for d := range Dir(2) {
		g.dirs[d].used = 0
	}
	return dm
}

// Store returns the group's store, nil for a group from [NewGroup].
func (g *Group) Store() Store {
	return g.store
}

// untilLeaseLocked is untilTurnLocked for a shared group: a member that
// had its share and could have more sleeps the shortest timer; otherwise
// it sleeps until the next tick boundary by the local clock, and is
// kicked sooner by the next lease.
func (g *Group) untilLeaseLocked(b *budget, w *waiter, d Dir, now time.Time) time.Duration {
	if w.m.hadShareLocked(d, g.shareLocked(b)) && subSat(b.level(), b.outstanding) >= g.needLocked() {
		return time.Nanosecond
	}
	return untilTick(now, tickIndex(now, b.tickNs), 1, b.tickNs)
}
