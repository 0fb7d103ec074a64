package actor

import (
	"math/bits"
	"sync/atomic"
)

// Read sizes of the routes that read into a chunk of their own (a socket's
// side door, a plain Transport.Read). A read takes a chunk as large as the
// stream has lately been delivering: see readSizer.
const (
	// minReadChunk is the least a plain Transport.Read reads into. Read
	// holds its chunk while it waits, so an idle connection's reader
	// holds this much.
	minReadChunk = 512
	// minSysReadChunk is the least a socket's read reads into. Its chunk
	// is taken only once data is there (see sysConn), so a small chunk
	// saves nothing while waiting; and growing from 512 bytes on a busy
	// socket was measured to leave many readers on a 4 KiB stack for good
	// (7.8 KB of stacks per idle connection after a 64 KiB echo, against
	// 6.4 KB starting at 4 KiB).
	minSysReadChunk = 4 << 10
	// maxReadChunk is the most one read reads into: the largest pooled
	// chunk (see newReadChunk). Fewer, larger reads are what a busy
	// stream's CPU goes to (docs/benchmarks.md, adaptive reads).
	maxReadChunk = 256 << 10
	// sharedReadChunk is the most a read asks for without a share of
	// bigReads: every busy stream may read this much per system call,
	// and only bigReadShares streams at a time more.
	sharedReadChunk = 64 << 10
	// bigReadShares is how many readers, process-wide, may read more
	// than sharedReadChunk at a time: with maxReadChunk, 2 MiB of reads
	// in flight. One busy stream's CPU per byte goes down with reads
	// above 64 KiB, but many busy streams each holding 256 KiB chunks
	// would hold a quarter of a MiB per stream for little gain: they
	// share the cores. What the budget costs and saves is measured in
	// docs/benchmarks.md (the read budget).
	bigReadShares = 8
)

// readBudget counts the readers holding a share: those whose sizer has
// grown above sharedReadChunk. A sizer takes a share as it grows past
// sharedReadChunk and gives it back as it shrinks to it, as its socket's
// reader is about to wait for data (readSizer.idle), or as its reader
// stops (readSizer.release); when all shares are taken it stays at
// sharedReadChunk and tries again after its next full read.
type readBudget struct {
	held atomic.Int32
	max  int32
}

// bigReads is the budget every read route shares.
var bigReads = readBudget{max: bigReadShares}

// take takes a share, or reports that none is left.
func (b *readBudget) take() bool {
	if b.held.Add(1) <= b.max {
		return true
	}
	b.held.Add(-1)
	return false
}

// full reports whether every share is taken.
func (b *readBudget) full() bool { return b.held.Load() >= b.max }

// give gives a share back.
func (b *readBudget) give() { b.held.Add(-1) }

// The sizer's steps: a read that fills its chunk makes the next one
// readGrowth times larger; readShrinkAfter reads in a row that would have
// fit in a readGrowth-th of it make it readGrowth times smaller. From a
// socket's 4 KiB, the steps are the pooled chunk classes.
const (
	readGrowth      = 1 << readGrowthShift
	readGrowthShift = 2
	readShrinkAfter = 2
)

// readSizer is the one place that decides how many bytes the next read
// of a transport asks for; every read route asks it (next) and tells it
// what the read brought (record). It follows Netty's
// AdaptiveRecvByteBufAllocator: grow at once when a read filled what it
// asked for, since more is likely waiting; shrink only after several
// short reads in a row, so one short read at the end of a burst does not
// undo the growth. A busy stream thus moves up to maxReadChunk per system
// call, and an interactive one keeps reading into small chunks.
//
// Above sharedReadChunk a sizer needs a share of a process-wide budget
// (bigReads): a few streams at a time read up to maxReadChunk, the rest
// up to sharedReadChunk, so that a process with many busy connections
// does not hold a 256 KiB chunk for each.
//
// The caps of the bufferevent (the per-read maximum, SetMaxRead), of the
// input (the room under the read high watermark, transportIO.allowed) and of
// the rate limit come in as next's limit and always win: the sizer only
// ever lowers what they allow.
//
// The sizer is owned by whoever reads: the actor while it reads a socket
// itself (waitInSocket, pullRead), the reader loop once it runs;
// the two never read at the same time.
//
// It is four bytes, sizes being powers of two kept as their logarithm: it
// sits in every connection's transportIO, whose allocation class an idle
// connection pays for.
type readSizer struct {
	shift  uint8 // the next read asks for 1<<shift bytes, within [lo, hi]
	lo, hi uint8
	short  uint8 // short reads in a row
}

// unboundedShift is the shift of a read that allocates nothing, which asks
// for all the caps allow (1 GiB, so that 1<<shift fits an int everywhere).
const unboundedShift = 30

// newReadSizer returns a sizer that starts at 1<<lo bytes and stays within
// [1<<lo, 1<<hi].
func newReadSizer(lo, hi uint8) readSizer {
	return readSizer{shift: lo, lo: lo, hi: hi}
}

// sizerFor returns the sizer of the reads of src (see sourceFor). A
// transport that hands over chunks it already holds (chunkSource)
// allocates nothing to fit a read, so its reads ask for all the caps
// allow; a socket reads into a chunk taken once data is there, from
// minSysReadChunk; any other transport (byteSource) from minReadChunk,
// since its Read holds the chunk while it waits.
func sizerFor(src source) readSizer {
	switch src.(type) {
	case *chunkSource:
		return newReadSizer(unboundedShift, unboundedShift)
	case byteSource:
		return newReadSizer(log2(minReadChunk), log2(maxReadChunk))
	}
	return newReadSizer(log2(minSysReadChunk), log2(maxReadChunk))
}

// log2 returns the logarithm of a power of two.
func log2(n int) uint8 { return uint8(bits.TrailingZeros(uint(n))) }

// size returns what the next read asks for when nothing caps it.
func (r *readSizer) size() int { return 1 << r.shift }

// max returns the most the sizer asks for while the budget stays as it
// is: its bound, or sharedReadChunk for a sizer without a share while
// none is left.
func (r *readSizer) max() int { return r.maxIn(&bigReads) }

func (r *readSizer) maxIn(b *readBudget) int {
	if r.shares() && !r.holds() && b.full() {
		return sharedReadChunk
	}
	return 1 << r.hi
}

// sharedShift is the shift of sharedReadChunk.
var sharedShift = log2(sharedReadChunk)

// shares reports whether the sizer can grow above sharedReadChunk, and so
// takes a share of the budget to do it.
func (r *readSizer) shares() bool { return r.lo <= sharedShift && r.hi > sharedShift }

// holds reports whether the sizer holds a share of the budget.
func (r *readSizer) holds() bool { return r.shares() && r.shift > sharedShift }

// idle gives back the sizer's share, if it holds one, as its reader is
// about to wait for data that is not there: a socket's reader holds no
// chunk while it waits, so it keeps no share either, and a connection
// that went quiet after a burst does not keep the budget from the busy
// ones. The next read asks for sharedReadChunk; a full one takes a share
// again.
func (r *readSizer) idle() { r.idleIn(&bigReads) }

func (r *readSizer) idleIn(b *readBudget) {
	if r.holds() {
		b.give()
		r.shift, r.short = sharedShift, 0
	}
}

// release gives back the sizer's share, if it holds one, when its reader
// stops reading for good.
func (r *readSizer) release() { r.releaseIn(&bigReads) }

func (r *readSizer) releaseIn(b *readBudget) {
	if r.holds() {
		b.give()
	}
	r.shift = r.lo
}

// next returns how many bytes the next read asks for: the sizer's size,
// but never more than limit (> 0), what the caps allow. A sizer whose
// caps keep its read within sharedReadChunk has no use for a share of
// the budget: it gives its share back (as idle does), so that a stream
// capped by SetMaxRead or a read watermark does not keep the budget from
// others.
func (r *readSizer) next(limit int) int { return r.nextIn(&bigReads, limit) }

func (r *readSizer) nextIn(b *readBudget, limit int) int {
	if limit <= sharedReadChunk && r.holds() {
		r.idleIn(b)
	}
	return min(r.size(), limit)
}

// record adapts the size after a read of n bytes that asked for room (what
// next returned). A read cut short by the caps (room below the size) that
// filled room says nothing about the stream: it leaves the size alone.
func (r *readSizer) record(n, room int) { r.recordIn(&bigReads, n, room) }

// recordIn is record with the budget b.
func (r *readSizer) recordIn(b *readBudget, n, room int) {
	size := r.size()
	switch {
	case n >= size:
		r.resize(b, min(r.shift+readGrowthShift, r.hi))
		r.short = 0
	case n < room && n <= size>>readGrowthShift:
		if r.short++; r.short >= readShrinkAfter {
			r.resize(b, max(r.shift-readGrowthShift, r.lo))
			r.short = 0
		}
	default:
		r.short = 0
	}
}

// resize moves the sizer to shift, taking a share of b as it grows above
// sharedReadChunk (or stopping at it when none is left) and giving it
// back as it comes down to it.
func (r *readSizer) resize(b *readBudget, shift uint8) {
	if r.shares() {
		big, wasBig := shift > sharedShift, r.holds()
		switch {
		case big && !wasBig && !b.take():
			shift = sharedShift
		case !big && wasBig:
			b.give()
		}
	}
	r.shift = shift
}
