package limiter

import (
	"fmt"
	"time"
)

// A Store keeps a group's budget: it grants the group, tick by tick, a
// [Lease], what the group's members may move in that tick, and the group
// serves its members from that lease (round robin, the min share) and
// from nothing else. Every group has one. [NewGroup] gives a group the
// in-process store: the budget in the process, one golang.org/x/time/rate
// token bucket per direction refilled at the tick boundaries, each lease
// the whole bucket. [NewSharedGroup] takes any other, typically one that
// several processes share (package limiter/redisgroup keeps the budget
// in Redis).
//
// A store grants in either of two ways. The group asks it, with
// [Store.Renew], at the first call in each tick of the local clock; a
// store that keeps the budget at hand answers with the lease at once. A
// store that must ask elsewhere answers that it has nothing yet and
// grants from a goroutine of its own with [Group.Grant] when the lease
// comes, reading what the members did with [Group.TakeDemand] and
// [Group.Config]; within a tick it may add to the lease
// ([Group.AddLease]) or take back what will not be used
// ([Group.Reclaim]).
//
// The limiter package never talks to a network: a Store that does lives
// in a package of its own, so that programs that do not use it do not
// import its client.
type Store interface {
	// Start is called once, by NewGroup or NewSharedGroup, with the new
	// group, before any Renew. A store that grants from a goroutine of
	// its own starts it here. An error makes NewSharedGroup fail with
	// it.
	Start(g *Group) error
	// Renew is called by the group, with the group's lock held, when
	// the group is made, at the first call that finds the local clock
	// in a later tick (in cfg's tick length) than the last Renew, and
	// by [Group.SetConfig] with the new config. left is, per direction,
	// what is left of the bucket: the last lease less what members
	// moved and manual decrements since, plus what [Group.AddLease] and
	// [Group.Grant] gave. A store that grants at once returns the
	// lease for the tick of now and true: the group's bucket becomes
	// it. One that grants with Group.Grant returns false, and the group
	// keeps its bucket (clipped to the new burst, in SetConfig). Renew
	// must not block, keep cfg, or call the group.
	Renew(now time.Time, cfg *Config, left [2]int64) (Lease, bool)
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
	// Read and Write are the bytes granted in each direction. Less than
	// 0 is a debt: members wait until a later lease is above the min
	// share.
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
// kept by s: its bucket is what s grants. With a store that grants from
// a goroutine of its own ([Group.Grant]) the bucket starts empty, so
// members wait until the first lease. Everything else (joining, turns,
// min share, totals) works as in a group from [NewGroup], which is the
// same with the in-process store. [Group.Close] closes s. A nil or
// invalid cfg gives an error wrapping [ErrInvalidConfig], a nil s one
// wrapping [ErrInvalid], and an error from s.Start is returned wrapped.
func NewSharedGroup(cfg *Config, s Store) (*Group, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newGroup(cfg, s, nil)
}

// Grant gives the group the lease l: in each direction the bucket
// becomes the lease, a new round starts and waiting members are served.
// What the last lease left lapses here: a store that grants this way
// settles it against its own budget from [Group.TakeDemand] (or, for
// the in-process store, from what is left at the next tick). The count
// of active members starts again. A store that does not grant at
// [Store.Renew] calls it once per tick; on a closed group it does
// nothing.
func (g *Group) Grant(l Lease) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	wakes := g.applyLocked(l, nil)
	for d := range Dir(2) {
		wakes = g.dirs[d].kickHead(wakes)
	}
	g.mu.Unlock()
	signal(wakes)
}

// applyLocked makes l the bucket and serves the queues.
func (g *Group) applyLocked(l Lease, wakes []wake) []wake {
	for d, n := range [2]int64{l.Read, l.Write} {
		b := &g.dirs[d]
		b.level = n
		b.tick = l.Tick
		b.active = 0
		b.newRound()
		wakes = g.dispatchLocked(Dir(d), wakes)
	}
	g.leases++
	return wakes
}

// AddLease adds read and write bytes to the current lease, for a store
// that grants more within a tick (what other processes left unused), and
// serves waiting members. Shares for the rest of the tick are computed
// from the new level; [Group.Demand] counts on. Amounts of 0 or less add
// nothing; on a closed group it does nothing.
func (g *Group) AddLease(read, write int64) {
	g.mu.Lock()
	if g.closed {
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
		b.roundLevel = b.level
		wakes = g.dispatchLocked(Dir(d), wakes)
		wakes = b.kickHead(wakes)
	}
	g.mu.Unlock()
	signal(wakes)
}

// Reclaim takes back what the group's members will not use of the
// current lease in direction d, for a store to return to its budget:
// the lease less what was used and the turns granted and not yet used,
// if no member is waiting in d (a waiting member would use it). It
// returns the bytes taken back, which [Group.Demand] does not count as
// used. On a closed group, or for an unknown d, it returns 0.
func (g *Group) Reclaim(d Dir) int64 {
	if !d.valid() {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := &g.dirs[d]
	if g.closed || len(b.queue) > 0 {
		return 0
	}
	n := subSat(b.level, b.outstanding)
	if n <= 0 {
		return 0
	}
	b.take(n)
	b.roundLevel = b.level
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

// Store returns the group's store: the one given to [NewSharedGroup],
// or the in-process store of a group from [NewGroup].
func (g *Group) Store() Store {
	return g.store
}
