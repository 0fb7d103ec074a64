package toxic

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/clock"
	"github.com/bevgo/bev/limiter"
)

// end is what a link asks of its stream when it is done with it.
type end int

const (
	endNone  end = iota
	endClose     // close the stream (EOF for a reader, FIN for a writer)
	endReset     // reset it
)

// link is one toxic acting on one stream of one connection.
type link interface {
	// pass moves bytes from src to dst at time now, at most limit of them
	// into dst (no limit when negative). fin reports that src will get
	// nothing more (the stream ended). It returns when it next wants to
	// be called (zero: only when more comes) and whether it ends the
	// stream.
	pass(dst, src *actor.Buffer, limit int, now time.Time, fin bool) (next time.Time, e end)
	// held is what it holds back, in bytes; a link holding the stream's
	// end and no bytes reports 1.
	held() int
	// release moves every byte it holds to dst, in order.
	release(dst *actor.Buffer)
	// update takes new attributes of the same type.
	update(k Kind)
	// transparent reports that, with its attributes as they are, the
	// link forwards every byte it is given at once and unchanged, holds
	// nothing and never ends the stream, whatever the time and the
	// stream's end: pass would only move src to dst. Only update may
	// change the answer.
	transparent() bool
}

// moveN moves min(n, src.Len()) bytes (all of src when n is negative)
// and returns how many.
func moveN(dst, src *actor.Buffer, n int) int {
	if n < 0 || n > src.Len() {
		n = src.Len()
	}
	if n == 0 {
		return 0
	}
	moved, _ := dst.MoveFromN(src, n)
	return moved
}

// noop is a toxic whose toxicity roll said no for this connection.
type noop struct{}

func (noop) pass(dst, src *actor.Buffer, limit int, _ time.Time, _ bool) (time.Time, end) {
	moveN(dst, src, limit)
	return time.Time{}, endNone
}
func (noop) held() int                                      { return 0 }
func (noop) release(*actor.Buffer)                          {}
func (noop) update(Kind)                                    {}
func (noop) transparent() bool                              { return true }
func (k *Latency) newLink(r *rand.Rand, _ clock.Clock) link { return &latencyLink{k: *k, r: r} }

type latencyLink struct {
	k     Latency
	r     *rand.Rand
	q     actor.Buffer
	due   []pending // one per chunk taken, oldest first, from due[first]
	first int
}

type pending struct {
	n  int
	at time.Time
}

func (l *latencyLink) pass(dst, src *actor.Buffer, limit int, now time.Time, _ bool) (time.Time, end) {
	if n := src.Len(); n > 0 {
		at := now.Add(l.k.delay(l.r))
		if l.first == len(l.due) && !at.After(now) {
			// Due now, with nothing before it: it passes at once, as
			// much as the limit lets, without a turn through the queue.
			n -= moveN(dst, src, limit)
			if limit >= 0 {
				limit = 0
			}
		}
		if n > 0 {
			l.q.MoveFrom(src)
			// A chunk never passes the one before it, whatever its jitter.
			if k := len(l.due); k > l.first && at.Before(l.due[k-1].at) {
				at = l.due[k-1].at
			}
			if len(l.due) == cap(l.due) && l.first > 0 {
				// Full, with chunks gone from its front: move the rest
				// there rather than grow, so a queue that never drains
				// stays as long as what it holds.
				k := copy(l.due, l.due[l.first:])
				clear(l.due[k:])
				l.due, l.first = l.due[:k], 0
			}
			l.due = append(l.due, pending{n: n, at: at})
		}
	}
	moved := 0
	for l.first < len(l.due) && !l.due[l.first].at.After(now) && (limit < 0 || moved < limit) {
		d := &l.due[l.first]
		want := d.n
		if limit >= 0 {
			want = min(want, limit-moved)
		}
		moveN(dst, &l.q, want)
		moved += want
		d.n -= want
		if d.n == 0 {
			l.pop()
		}
	}
	if l.first < len(l.due) && l.due[l.first].at.After(now) {
		return l.due[l.first].at, endNone
	}
	return time.Time{}, endNone
}

// pop drops the oldest pending chunk; once none is left, the queue starts
// over at the front of its array, so a steady stream allocates nothing.
func (l *latencyLink) pop() {
	l.due[l.first] = pending{}
	l.first++
	if l.first == len(l.due) {
		l.due, l.first = l.due[:0], 0
	}
}

func (l *latencyLink) held() int { return l.q.Len() }
func (l *latencyLink) release(dst *actor.Buffer) {
	dst.MoveFrom(&l.q)
	l.due, l.first = nil, 0
}
func (l *latencyLink) update(k Kind) { l.k = *k.(*Latency) }

// transparent: a delay of 0 with no jitter makes every chunk due at once.
// What the link may still hold (taken beyond a limit, or under an earlier
// delay) the stage counts apart, through held.
func (l *latencyLink) transparent() bool { return l.k.Latency == 0 && l.k.Jitter == 0 }

// bandwidthTick is the refill period of the bandwidth toxic's bucket:
// toxiproxy also sends a slow stream in 100 ms slices.
const bandwidthTick = 100 * time.Millisecond

func (k *Bandwidth) newLink(_ *rand.Rand, c clock.Clock) link {
	l := &bandwidthLink{clock: c}
	l.update(k)
	return l
}

type bandwidthLink struct {
	clock  clock.Clock // the stage's: the bucket refills as it moves
	rate   int64
	bucket *limiter.Bucket
}

func (l *bandwidthLink) update(k Kind) {
	l.rate = k.(*Bandwidth).Rate
	if l.rate <= 0 {
		l.bucket = nil
		return
	}
	// Bytes per tick: Rate KB/s is Rate*100 bytes every 100 ms, held at
	// the largest int64 where that product would wrap (and starve the
	// stream to a byte a tick).
	perKB := 1000 * int64(bandwidthTick) / int64(time.Second)
	per := int64(math.MaxInt64)
	if l.rate <= math.MaxInt64/perKB {
		per = max(l.rate*perKB, 1)
	}
	cfg := &limiter.Config{ReadRate: per, ReadBurst: per, WriteRate: per, WriteBurst: per, Tick: bandwidthTick}
	if l.bucket == nil {
		// It starts empty: as toxiproxy's, the first bytes wait their
		// time like the rest instead of passing as a free burst.
		l.bucket, _ = limiter.NewBucket(cfg, limiter.WithClock(l.clock))
		l.bucket.Decrement(limiter.Write, per)
		return
	}
	l.bucket.SetConfig(cfg) //nolint:errcheck // valid by construction
}

func (l *bandwidthLink) pass(dst, src *actor.Buffer, limit int, now time.Time, _ bool) (time.Time, end) {
	if l.bucket == nil {
		moveN(dst, src, limit)
		return time.Time{}, endNone
	}
	if src.Len() == 0 || limit == 0 {
		return time.Time{}, endNone
	}
	allow := l.bucket.Limit(limiter.Write)
	if allow > 0 {
		n := int(min(allow, int64(src.Len())))
		if limit >= 0 {
			n = min(n, limit)
		}
		moveN(dst, src, n)
		l.bucket.Decrement(limiter.Write, int64(n))
	}
	if src.Len() == 0 {
		return time.Time{}, endNone
	}
	// Ticks fall on multiples of the tick since the Unix epoch.
	tick := int64(bandwidthTick)
	ns := now.UnixNano()
	return time.Unix(0, (ns/tick+1)*tick), endNone
}

func (l *bandwidthLink) held() int             { return 0 }
func (l *bandwidthLink) transparent() bool     { return l.bucket == nil }
func (l *bandwidthLink) release(*actor.Buffer) {}

func (k *SlowClose) newLink(*rand.Rand, clock.Clock) link { return &slowCloseLink{k: *k} }

type slowCloseLink struct {
	k      SlowClose
	finAt  time.Time // when the stream's end was seen; zero before
	passed bool      // the delay is over: the end goes on
}

func (l *slowCloseLink) pass(dst, src *actor.Buffer, limit int, now time.Time, fin bool) (time.Time, end) {
	moveN(dst, src, limit)
	if !fin || src.Len() > 0 || l.passed {
		return time.Time{}, endNone
	}
	if l.finAt.IsZero() {
		l.finAt = now
	}
	at := l.finAt.Add(millis(l.k.Delay))
	if now.Before(at) {
		return at, endNone
	}
	l.passed = true
	return time.Time{}, endNone
}

func (l *slowCloseLink) held() int {
	if !l.finAt.IsZero() && !l.passed {
		return 1
	}
	return 0
}
func (l *slowCloseLink) release(*actor.Buffer) { l.passed = true }
func (l *slowCloseLink) update(k Kind)         { l.k = *k.(*SlowClose) }

// transparent is false: the link holds the stream's end back.
func (l *slowCloseLink) transparent() bool { return false }

func (k *Timeout) newLink(*rand.Rand, clock.Clock) link { return &timeoutLink{k: *k} }

type timeoutLink struct {
	k     Timeout
	start time.Time
}

func (l *timeoutLink) pass(_, src *actor.Buffer, _ int, now time.Time, _ bool) (time.Time, end) {
	src.Reset() // all data stops, as toxiproxy's drops it
	if l.start.IsZero() {
		l.start = now
	}
	if l.k.Timeout == 0 {
		return time.Time{}, endNone
	}
	at := l.start.Add(millis(l.k.Timeout))
	if now.Before(at) {
		return at, endNone
	}
	return time.Time{}, endClose
}

func (l *timeoutLink) held() int             { return 0 }
func (l *timeoutLink) release(*actor.Buffer) {}

// update restarts the timeout, as toxiproxy restarts a toxic it updates.
func (l *timeoutLink) update(k Kind)     { l.k, l.start = *k.(*Timeout), time.Time{} }
func (l *timeoutLink) transparent() bool { return false }

func (k *ResetPeer) newLink(*rand.Rand, clock.Clock) link { return &resetLink{k: *k} }

type resetLink struct {
	k     ResetPeer
	first time.Time // when data first came; zero before
}

func (l *resetLink) pass(_, src *actor.Buffer, _ int, now time.Time, _ bool) (time.Time, end) {
	if src.Len() > 0 && l.first.IsZero() {
		l.first = now
	}
	src.Reset()
	if l.first.IsZero() {
		return time.Time{}, endNone
	}
	at := l.first.Add(millis(l.k.Timeout))
	if now.Before(at) {
		return at, endNone
	}
	return time.Time{}, endReset
}

func (l *resetLink) held() int             { return 0 }
func (l *resetLink) release(*actor.Buffer) {}
func (l *resetLink) update(k Kind)         { l.k = *k.(*ResetPeer) }
func (l *resetLink) transparent() bool     { return false }

func (k *Slicer) newLink(r *rand.Rand, _ clock.Clock) link { return &slicerLink{k: *k, r: r} }

type slicerLink struct {
	k      Slicer
	r      *rand.Rand
	q      actor.Buffer
	pieces []int // sizes of the pieces in q, in order
	nextAt time.Time
}

// cut appends the piece sizes of a chunk of n bytes, as toxiproxy's
// chunk: halve around the middle, moved by up to the variation, until a
// piece is within the variation of the average.
func (l *slicerLink) cut(n int) {
	var rec func(n int)
	rec = func(n int) {
		if n-l.k.AverageSize <= l.k.SizeVariation {
			l.pieces = append(l.pieces, n)
			return
		}
		mid := n / 2
		if l.k.SizeVariation > 0 {
			mid += l.r.IntN(2*l.k.SizeVariation) - l.k.SizeVariation
		}
		rec(mid)
		rec(n - mid)
	}
	rec(n)
}

func (l *slicerLink) pass(dst, src *actor.Buffer, limit int, now time.Time, _ bool) (time.Time, end) {
	if n := src.Len(); n > 0 {
		l.q.MoveFrom(src)
		l.cut(n)
	}
	delay := scaled(int64(l.k.Delay), time.Microsecond)
	moved := 0
	for len(l.pieces) > 0 && (limit < 0 || moved < limit) {
		if delay > 0 && now.Before(l.nextAt) {
			return l.nextAt, endNone
		}
		want := l.pieces[0]
		if limit >= 0 {
			want = min(want, limit-moved)
		}
		moveN(dst, &l.q, want)
		moved += want
		l.pieces[0] -= want
		if l.pieces[0] > 0 {
			break // the limit cut the piece: the rest goes when there is room
		}
		l.pieces = l.pieces[1:]
		if delay > 0 {
			l.nextAt = now.Add(delay)
		}
	}
	if len(l.pieces) > 0 && delay > 0 && now.Before(l.nextAt) {
		return l.nextAt, endNone
	}
	return time.Time{}, endNone
}

func (l *slicerLink) held() int { return l.q.Len() }
func (l *slicerLink) release(dst *actor.Buffer) {
	dst.MoveFrom(&l.q)
	l.pieces = nil
}
func (l *slicerLink) update(k Kind) { l.k = *k.(*Slicer) }

// transparent is false even with no delay: the pieces are its meaning.
func (l *slicerLink) transparent() bool { return false }

func (k *LimitData) newLink(*rand.Rand, clock.Clock) link { return &limitLink{k: *k} }

type limitLink struct {
	k    LimitData
	sent int64
}

func (l *limitLink) pass(dst, src *actor.Buffer, limit int, _ time.Time, _ bool) (time.Time, end) {
	left := l.k.Bytes - l.sent
	if left > 0 {
		n := int(min(left, int64(src.Len())))
		if limit >= 0 {
			n = min(n, limit)
		}
		l.sent += int64(moveN(dst, src, n))
	}
	if l.sent >= l.k.Bytes && (src.Len() > 0 || l.k.Bytes > 0) {
		src.Reset()
		return time.Time{}, endClose
	}
	return time.Time{}, endNone
}

func (l *limitLink) held() int             { return 0 }
func (l *limitLink) release(*actor.Buffer) {}
func (l *limitLink) update(k Kind)         { l.k = *k.(*LimitData) }
func (l *limitLink) transparent() bool     { return false }
