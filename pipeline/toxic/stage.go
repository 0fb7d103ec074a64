package toxic

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

// DefaultHold is the most a Stage holds when its limit gives no bound
// (the bufferevent it feeds has no watermark).
const DefaultHold = 64 << 10

// StageConfig configures a Stage. The zero value means the defaults.
type StageConfig struct {
	// Clock arms the stage's timer. Nil means the real clock; pass the
	// Base's ([actor.Base.Clock]).
	Clock actor.Clock
	// Wake is called, on a goroutine of the clock's or the Set's, when
	// the stage has something to do without new input (a delay is over,
	// the set changed): it should make the bufferevent call the stage
	// again, without blocking (Flush with actor.Normal does). NewFilter
	// sets it.
	Wake func()
	// End is called, on the stage's goroutine, when a toxic ends the
	// stream: reset for reset_peer, else a close (timeout, limit_data, a
	// timeout toxic removed).
	// What it returns, if not nil, fails the stage with that cause. Nil
	// means failing with ErrReset or ErrClosed.
	End func(reset bool) error
	// Rand draws toxicity and jitter. Nil means a generator of its own.
	Rand *rand.Rand
}

// Stage is one stream of one connection going through the toxics of a
// Set: a pipeline.Stage that applies the set's toxics of its stream, in
// order. It holds at most its limit (see the package doc), reports what
// it holds through Buffered, and arms one timer on its clock for the
// earliest moment a toxic wants to act. It is closed (its timer stopped,
// what it holds dropped, the Set forgotten) by Close, which a filter calls
// when it stops. Process and Buffered run on the filter's goroutine, as
// every stage's; Close is safe from any goroutine after the filter stopped.
type Stage struct {
	set   *Set
	dir   Stream
	reads bool // the stage is on what its bufferevent reads
	clock actor.Clock
	end   atomic.Pointer[func(reset bool) error]
	rng   *rand.Rand
	wake  atomic.Pointer[func()]

	gen    uint64
	slots  []*slot
	head   actor.Buffer // taken from src, not yet given to the first toxic
	fin    bool         // the stream ended (Finished came)
	ended  bool         // a toxic ended the stream: everything is dropped
	endErr error
	// ending is the end a toxic asked for, waiting for the bytes passed
	// before it to leave dst.
	ending end
	dirty  atomic.Bool // the set changed since the last sync
	// closing is set when a toxic of the other stream of the connection
	// ended it (see NewFilter): the stage takes nothing more, and what
	// its toxics hold passes on before the stream's end.
	closing atomic.Bool
	// passing is set while the stage's toxics are all transparent (or it
	// has none) and it holds nothing, as of its last call: see Passes.
	passing atomic.Bool

	// clear is set while every toxic of the stage is transparent (see
	// link.transparent), none included: updated by sync.
	clear bool

	timer   actor.Timer
	timerAt time.Time
}

type slot struct {
	name string
	gen  uint64
	l    link
	out  actor.Buffer // what l passed on and the next toxic has not taken
}

// NewStage returns a stage applying the toxics of s on stream d, as they
// are now (from the moment it is made, though nothing runs before its
// first call) and as they change; see Stage. A Downstream stage is taken to
// be on what its bufferevent reads, an Upstream one on what it writes
// (NewStages, which knows, says so itself): when a toxic closes a read
// stream, what passed before it is read before the end. A stage of a
// nil set carries no toxic: it passes everything on.
func (s *Set) NewStage(d Stream, cfg StageConfig) *Stage {
	st := &Stage{set: s, dir: d, reads: d == Downstream, clock: cfg.Clock, rng: cfg.Rand, gen: ^uint64(0)}
	if cfg.End != nil {
		st.SetEnd(cfg.End)
	}
	if st.clock == nil {
		st.clock = (*actor.Base)(nil).Clock()
	}
	if st.rng == nil {
		st.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Wake != nil {
		st.SetWake(cfg.Wake)
	}
	// The stage takes the set's toxics as they are now, as toxiproxy's
	// link takes its toxics when the connection is made: a toxic removed
	// before the stage's first call was still on this stream, and a
	// timeout then closes it (sync). Watching first, no change is missed:
	// one between watch and sync is in the snapshot, a later one marks
	// the stage dirty again.
	st.dirty.Store(true)
	s.watch(st)
	st.sync()
	st.dirty.Store(true) // the first call runs the toxics, even with no data (a timeout starts)
	return st
}

// SetWake sets the function the stage calls when it has something to do
// without new input (see StageConfig.Wake). It is safe from any goroutine.
func (st *Stage) SetWake(f func()) { st.wake.Store(&f) }

// changed marks the set changed and wakes the stage.
func (st *Stage) changed() {
	st.dirty.Store(true)
	st.poke()
}

// SetEnd sets what the stage calls when a toxic ends the stream (see
// StageConfig.End). It is safe from any goroutine.
func (st *Stage) SetEnd(f func(reset bool) error) { st.end.Store(&f) }

// close ends the stream because a toxic of the connection's other stream
// ended the connection: from its next call the stage drops what it is
// given, and its toxics pass on what they hold, as at the stream's end.
func (st *Stage) close() {
	st.closing.Store(true)
	st.poke()
}

func (st *Stage) poke() {
	if f := st.wake.Load(); f != nil {
		(*f)()
	}
}

// Process applies the toxics; see pipeline.Stage. Flush is taken as
// Normal (a delay is not skipped); Finished tells the toxics that the
// stream ended, and a slow_close holds it back. After a toxic ended the
// stream, Process drops src; it returns Failed with End's error, or with
// ErrReset or ErrClosed when End is nil. Called by hand with a nil buffer
// or an unknown mode it returns Failed with an error wrapping ErrInvalid
// and pipeline.ErrInvalid (pipeline.CheckProcess), and changes nothing.
func (st *Stage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	if err := pipeline.CheckProcess(dst, src, mode); err != nil {
		return pipeline.Failed, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	st.passing.Store(false)
	if st.endErr != nil {
		return pipeline.Failed, st.endErr
	}
	if st.ended {
		src.Reset()
		return pipeline.NeedMore, nil
	}
	if st.ending != endNone {
		src.Reset()
		if dst.Len() > 0 {
			return pipeline.NeedMore, nil
		}
		return st.endStream(st.ending == endReset, src)
	}
	if mode == actor.Finished {
		st.fin = true
	}
	if st.closing.Load() {
		src.Reset()
		st.fin = true
	}
	if e := st.sync(); e != endNone {
		// A timeout toxic was removed: as toxiproxy's, it closes.
		return st.finish(e, dst, src)
	}
	if st.clear && st.timerAt.IsZero() && st.holdsNothing() {
		// No toxic, or only transparent ones (see Passes): a
		// pass-through, the way of every chunk on a connection whose
		// set is empty or has only such toxics.
		st.passing.Store(!st.fin)
		if moveN(dst, src, limit) == 0 {
			return pipeline.NeedMore, nil
		}
		return pipeline.OK, nil
	}
	dstBefore, srcBefore := dst.Len(), src.Len()
	bound := limit
	if bound < 0 {
		bound = DefaultHold
	}
	if room := bound - st.Buffered(); room > 0 {
		moveN(&st.head, src, room)
	}
	if len(st.slots) == 0 {
		moveN(dst, &st.head, limit)
		st.arm(time.Time{}, time.Time{})
		return st.result(dst, src, dstBefore, srcBefore), nil
	}
	now := st.clock.Now()
	var next time.Time
	e := endNone
	for range 8 {
		next = time.Time{}
		progress := false
		upstreamEmpty := src.Len() == 0
		for i, sl := range st.slots {
			in := &st.head
			if i > 0 {
				in = &st.slots[i-1].out
			}
			upstreamEmpty = upstreamEmpty && in.Len() == 0
			out, lim := &sl.out, -1
			if i == len(st.slots)-1 {
				out = dst
				if limit >= 0 {
					lim = max(0, limit-(dst.Len()-dstBefore))
				}
			}
			inB, outB := in.Len(), out.Len()
			at, ei := sl.l.pass(out, in, lim, now, st.fin && upstreamEmpty)
			if ei != endNone {
				e = ei
				break
			}
			if !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
			upstreamEmpty = upstreamEmpty && sl.l.held() == 0
			if in.Len() != inB || out.Len() != outB {
				progress = true
			}
		}
		if e != endNone || !progress {
			break
		}
	}
	if e != endNone {
		return st.finish(e, dst, src)
	}
	st.arm(next, now)
	return st.result(dst, src, dstBefore, srcBefore), nil
}

// finish ends the stream for a toxic that asked for e: at once for a reset
// or on what the bufferevent writes (a half-close waits for what was
// written already); on what it reads, once what passed before the close
// was read.
func (st *Stage) finish(e end, dst, src *actor.Buffer) (pipeline.Result, error) {
	st.drop()
	src.Reset()
	if e == endClose && dst.Len() > 0 && st.reads {
		st.ending = e
		// A read callback may take dst in this same turn, and nothing
		// would then call the stage again: ask for a turn.
		st.poke()
		return pipeline.OK, nil
	}
	return st.endStream(e == endReset, src)
}

func (st *Stage) result(dst, src *actor.Buffer, dstBefore, srcBefore int) pipeline.Result {
	if dst.Len() != dstBefore || src.Len() != srcBefore {
		return pipeline.OK
	}
	return pipeline.NeedMore
}

// endStream drops everything and asks End to end the stream.
func (st *Stage) endStream(reset bool, src *actor.Buffer) (pipeline.Result, error) {
	st.ended, st.ending = true, endNone
	st.drop()
	src.Reset()
	var err error
	switch end := st.end.Load(); {
	case end != nil:
		err = (*end)(reset)
	case reset:
		err = ErrReset
	default:
		err = ErrClosed
	}
	if err != nil {
		st.endErr = err
		return pipeline.Failed, err
	}
	return pipeline.OK, nil
}

// sync brings the stage's toxics in line with the set: new ones join at
// the end (or as a no-op when their toxicity roll says so), updated ones
// take their new attributes, and removed ones hand what they passed and
// what they hold, in that order, to the toxic after them. It returns
// endClose when a timeout toxic that was on the stream was removed:
// toxiproxy's closes the connection then (its Cleanup).
func (st *Stage) sync() end {
	// The set marks its stages dirty before it wakes them: no lock on
	// the way of every chunk while nothing changes.
	if !st.dirty.Swap(false) {
		return endNone
	}
	gen, entries, changed := st.set.snapshot(st.gen, st.dir)
	if !changed {
		return endNone
	}
	closed := endNone
	st.gen = gen
	want := make(map[string]entry, len(entries))
	for _, e := range entries {
		want[e.t.Name] = e
	}
	kept := make(map[string]*slot, len(st.slots))
	prev := &st.head
	for _, sl := range st.slots {
		e, ok := want[sl.name]
		if ok {
			if e.gen != sl.gen {
				sl.gen = e.gen
				if _, isNoop := sl.l.(noop); !isNoop {
					sl.l.update(e.t.Kind)
				}
			}
			kept[sl.name] = sl
			prev = &sl.out
			continue
		}
		if _, ok := sl.l.(*timeoutLink); ok {
			closed = endClose
		}
		// What the removed toxic passed on is older than what it holds,
		// which is older than what waits before it.
		var merged actor.Buffer
		merged.MoveFrom(&sl.out)
		sl.l.release(&merged)
		merged.MoveFrom(prev)
		prev.MoveFrom(&merged)
	}
	slots := make([]*slot, 0, len(entries))
	for _, e := range entries {
		if sl, ok := kept[e.t.Name]; ok {
			slots = append(slots, sl)
			continue
		}
		var l link = noop{}
		if st.rng.Float64() < e.t.Toxicity {
			l = e.t.Kind.newLink(st.rng, st.clock)
		}
		slots = append(slots, &slot{name: e.t.Name, gen: e.gen, l: l})
	}
	st.slots = slots
	st.clear = true
	for _, sl := range slots {
		st.clear = st.clear && sl.l.transparent()
	}
	return closed
}

// holdsNothing reports whether no byte waits in the stage: taken from
// src, passed on by a toxic or held by one.
func (st *Stage) holdsNothing() bool {
	if st.head.Len() > 0 {
		return false
	}
	for _, sl := range st.slots {
		if sl.out.Len() > 0 || sl.l.held() > 0 {
			return false
		}
	}
	return true
}

// arm sets the timer for next (stops it for zero).
func (st *Stage) arm(next, now time.Time) {
	if next.Equal(st.timerAt) {
		return
	}
	st.timerAt = next
	if next.IsZero() {
		if st.timer != nil {
			st.timer.Stop()
		}
		return
	}
	d := next.Sub(now)
	if st.timer == nil {
		st.timer = st.clock.AfterFunc(d, st.poke)
		return
	}
	st.timer.Reset(d)
}

// Passes reports whether the stage passes bytes on unchanged now: each of
// its toxics is transparent (or it has none), it holds nothing, and its
// set has not changed since its last call (actor.Passer). A toxic is
// transparent while its attributes make it forward every byte at once and
// unchanged: a latency of 0 with no jitter, a bandwidth of 0 (no cap), and
// any toxic whose toxicity roll left it out of this connection. While it
// does, a socket's actor may let writers skip it (see
// actor.Bufferevent.Write): a toxic added meanwhile applies from the next
// chunk, as on a chunk already under way. It is safe from any goroutine.
func (st *Stage) Passes() bool {
	return st.passing.Load() && !st.dirty.Load() && !st.closing.Load()
}

// Buffered returns what the stage holds: bytes taken and not yet passed
// on, at least 1 while it waits to act without new input (its timer is
// armed, the set changed, an end waits for the bytes before it), so that
// the bufferevent calls it again, and holds its EOF or half-close back.
func (st *Stage) Buffered() int {
	if st.ended {
		return 0
	}
	n := st.head.Len()
	for _, sl := range st.slots {
		n += sl.out.Len() + sl.l.held()
	}
	if n == 0 && (!st.timerAt.IsZero() || st.ending != endNone || st.dirty.Load()) {
		n = 1
	}
	return n
}

func (st *Stage) drop() {
	st.head.Reset()
	for _, sl := range st.slots {
		sl.out.Reset()
		var b actor.Buffer
		sl.l.release(&b)
		b.Reset()
	}
	st.slots = nil
	st.arm(time.Time{}, time.Time{})
}

// Close stops the stage's timer, drops what it holds and leaves its Set.
// It returns nil.
func (st *Stage) Close() error {
	st.set.unwatch(st)
	st.wake.Store(nil)
	st.drop()
	return nil
}
