package actor

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"testing"
	"time"
)

// noBudget returns a budget that never runs out, so that a test of the
// sizer's steps does not depend on what other readers hold.
func noBudget() *readBudget { return &readBudget{max: math.MaxInt32} }

// A read that fills what it asked for makes the next one four times
// larger, up to the bound.
func TestReadSizerGrowsOnFullReads(t *testing.T) {
	r, b := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk)), noBudget()
	var got []int
	for range 5 {
		room := r.next(math.MaxInt)
		got = append(got, room)
		r.recordIn(b, room, room)
	}
	want := []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 256 << 10}
	if !slices.Equal(got, want) {
		t.Errorf("sizes of full reads = %v, want %v", got, want)
	}
}

// One short read at the end of a burst leaves the size; two in a row
// shrink it a step, never below the floor.
func TestReadSizerShrinksAfterShortReads(t *testing.T) {
	r, b := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk)), noBudget()
	for range 4 {
		r.recordIn(b, r.next(math.MaxInt), r.next(math.MaxInt))
	}
	if got := r.next(math.MaxInt); got != maxReadChunk {
		t.Fatalf("after four full reads next() = %d, want %d", got, maxReadChunk)
	}
	r.recordIn(b, 100, maxReadChunk)
	if got := r.next(math.MaxInt); got != maxReadChunk {
		t.Errorf("one short read shrank the size to %d", got)
	}
	r.recordIn(b, maxReadChunk/2, maxReadChunk) // not short enough: resets the count
	r.recordIn(b, 100, maxReadChunk)
	if got := r.next(math.MaxInt); got != maxReadChunk {
		t.Errorf("short, half-full, short shrank the size to %d", got)
	}
	var got []int
	for range 5 {
		room := r.next(math.MaxInt)
		r.recordIn(b, 64, room)
		r.recordIn(b, 64, room)
		got = append(got, r.next(math.MaxInt))
	}
	want := []int{64 << 10, 16 << 10, 4 << 10, 4 << 10, 4 << 10}
	if !slices.Equal(got, want) {
		t.Errorf("sizes after pairs of 64-byte reads = %v, want %v", got, want)
	}
}

// The caps always win, and a read cut short by them that filled what it
// was allowed says nothing about the stream: the size stays.
func TestReadSizerCapsWin(t *testing.T) {
	r, b := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk)), noBudget()
	if got := r.next(100); got != 100 {
		t.Errorf("next(100) = %d, want 100", got)
	}
	r.recordIn(b, 100, 100)
	if got := r.next(math.MaxInt); got != minSysReadChunk {
		t.Errorf("a full read cut by the cap changed the size to %d", got)
	}
}

// A transport that hands over chunks it holds allocates nothing to fit a
// read: its reads ask for all the caps allow, and never adapt.
func TestReadSizerOfChunkTransport(t *testing.T) {
	p, q := newPipe()
	defer p.Close()
	defer q.Close()
	r, b := sizerFor(sourceFor(p, nil, nil)), noBudget()
	for _, n := range []int{1, 0, 5, 1 << 20} {
		r.recordIn(b, n, r.next(1<<20))
		if got := r.next(1 << 20); got != 1<<20 {
			t.Fatalf("after a read of %d: next(1 MiB) = %d, want 1 MiB", n, got)
		}
	}
	plain := sizerFor(sourceFor(struct{ Transport }{p}, nil, nil))
	if got := plain.next(math.MaxInt); got != minReadChunk {
		t.Errorf("a plain Transport's first read asks for %d, want %d", got, minReadChunk)
	}
}

// FuzzReadSizer drives a sizer with any sequence of caps and read results
// and checks its invariants: a read never asks for more than the caps nor
// for nothing, the size stays within its bounds, it holds a share of the
// budget exactly while it is above sharedReadChunk, idle and a read capped
// within sharedReadChunk bring it down to sharedReadChunk and give the share
// back, a full read never
// shrinks it, and one short read never does either.
func FuzzReadSizer(f *testing.F) {
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x01, 0x01, 0x01})
	f.Add(bytes.Repeat([]byte{0xff, 0x10}, 20))
	f.Add([]byte{0x0f, 0xff, 0x0f, 0xff, 0x0f, 0xff, 0x0f, 0xff, 0xf0, 0x00, 0x00, 0x02, 0x00, 0x02})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r, b := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk)), noBudget()
		shortRun := 0
		for len(ops) >= 2 {
			op := binary.BigEndian.Uint16(ops)
			ops = ops[2:]
			if op>>12 == 0xf { // the reader waits on a quiet socket
				before := r.size()
				r.idleIn(b)
				if after := r.size(); after != min(before, sharedReadChunk) || b.held.Load() != 0 {
					t.Fatalf("idle at size %d: size %d, %d shares held", before, after, b.held.Load())
				}
				if before > sharedReadChunk {
					shortRun = 0 // the sizer starts over at sharedReadChunk
				}
				continue
			}
			limit := math.MaxInt
			if op&1 != 0 {
				limit = 1 + int(op>>1)*8 // a cap from 1 byte to 256 KiB
			}
			before := r.size()
			room := r.nextIn(b, limit)
			if limit <= sharedReadChunk && before > sharedReadChunk {
				// A capped read has no use for a share: the sizer
				// gives it back, as idle does.
				if r.size() != sharedReadChunk || b.held.Load() != 0 {
					t.Fatalf("capped at %d with size %d: size %d, %d shares held", limit, before, r.size(), b.held.Load())
				}
				before, shortRun = sharedReadChunk, 0
			}
			if room < 1 || room > limit || room > before {
				t.Fatalf("next(%d) = %d with size %d", limit, room, before)
			}
			n := room
			if op&2 != 0 {
				n = int(op>>2) % (room + 1)
			}
			r.recordIn(b, n, room)
			after := r.size()
			if after < minSysReadChunk || after > maxReadChunk {
				t.Fatalf("size %d out of [%d, %d]", after, minSysReadChunk, maxReadChunk)
			}
			if held := b.held.Load(); held != 0 && held != 1 || (held == 1) != (after > sharedReadChunk) {
				t.Fatalf("size %d with %d shares of the budget held", after, held)
			}
			switch {
			case n == before:
				if after != min(before*readGrowth, maxReadChunk) {
					t.Fatalf("a full read of %d grew the size to %d", n, after)
				}
			case after > before:
				t.Fatalf("a read of %d of %d (size %d) grew the size to %d", n, room, before, after)
			}
			if n < room && n <= before/readGrowth {
				shortRun++
			} else {
				shortRun = 0
			}
			if after < before && shortRun < readShrinkAfter {
				t.Fatalf("size shrank from %d to %d after %d short reads", before, after, shortRun)
			}
			if after < before {
				shortRun = 0
			}
		}
	})
}

// Above sharedReadChunk a sizer needs one of the budget's shares: with
// one share, the first stream to fill its reads grows to maxReadChunk and
// the second stops at sharedReadChunk, and reads no more than that at a
// time (max), until the first gives its share back by shrinking or
// stopping.
func TestReadSizerSharesBudget(t *testing.T) {
	b := &readBudget{max: 1}
	grow := func(r *readSizer) int {
		for range 4 {
			room := r.next(math.MaxInt)
			r.recordIn(b, room, room)
		}
		return r.next(math.MaxInt)
	}
	first := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk))
	second := first
	if got := grow(&first); got != maxReadChunk {
		t.Fatalf("the first busy stream reads %d, want %d", got, maxReadChunk)
	}
	if got := grow(&second); got != sharedReadChunk {
		t.Fatalf("the second busy stream, with no share left, reads %d, want %d", got, sharedReadChunk)
	}
	if got := second.maxIn(b); got != sharedReadChunk {
		t.Errorf("max() of a stream without a share = %d, want %d", got, sharedReadChunk)
	}
	if got := first.maxIn(b); got != maxReadChunk {
		t.Errorf("max() of the stream with the share = %d, want %d", got, maxReadChunk)
	}
	// Two short reads shrink the first to sharedReadChunk: its share goes
	// back, and the second takes it with its next full read.
	first.recordIn(b, 100, maxReadChunk)
	first.recordIn(b, 100, maxReadChunk)
	if got, held := first.next(math.MaxInt), b.held.Load(); got != sharedReadChunk || held != 0 {
		t.Fatalf("after two short reads the first reads %d with %d shares held, want %d and 0", got, held, sharedReadChunk)
	}
	if got := grow(&second); got != maxReadChunk {
		t.Fatalf("the second, with the share free, reads %d, want %d", got, maxReadChunk)
	}
	// Stopping gives the share back and starts the sizer over.
	second.releaseIn(b)
	if got, held := second.next(math.MaxInt), b.held.Load(); got != minSysReadChunk || held != 0 {
		t.Errorf("after release: next() = %d with %d shares held, want %d and 0", got, held, minSysReadChunk)
	}
	first.releaseIn(b) // holds none: gives nothing back
	if held := b.held.Load(); held != 0 {
		t.Errorf("releasing a sizer without a share left %d held", held)
	}
}

// A reader about to wait on a quiet socket gives its share back (idle):
// its next read asks for sharedReadChunk, and a full one takes a share
// again. A sizer without a share is left as it is.
func TestReadSizerIdle(t *testing.T) {
	b := &readBudget{max: 1}
	r := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk))
	for range 4 {
		room := r.next(math.MaxInt)
		r.recordIn(b, room, room)
	}
	if got, held := r.next(math.MaxInt), b.held.Load(); got != maxReadChunk || held != 1 {
		t.Fatalf("a busy stream reads %d with %d shares held, want %d and 1", got, held, maxReadChunk)
	}
	r.idleIn(b)
	if got, held := r.next(math.MaxInt), b.held.Load(); got != sharedReadChunk || held != 0 {
		t.Fatalf("after idle: next() = %d with %d shares held, want %d and 0", got, held, sharedReadChunk)
	}
	r.idleIn(b) // holds none: changes nothing
	if got, held := r.next(math.MaxInt), b.held.Load(); got != sharedReadChunk || held != 0 {
		t.Fatalf("idle twice: next() = %d with %d shares held, want %d and 0", got, held, sharedReadChunk)
	}
	r.recordIn(b, sharedReadChunk, sharedReadChunk)
	if got, held := r.next(math.MaxInt), b.held.Load(); got != maxReadChunk || held != 1 {
		t.Errorf("a full read after idle: next() = %d with %d shares held, want %d and 1", got, held, maxReadChunk)
	}
	small := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk))
	small.idleIn(b)
	if got, held := small.next(math.MaxInt), b.held.Load(); got != minSysReadChunk || held != 1 {
		t.Errorf("idle of a sizer without a share: next() = %d with %d shares held, want %d and 1", got, held, minSysReadChunk)
	}
}

// A stream whose caps keep its reads within sharedReadChunk (SetMaxRead,
// a read watermark) gives back the share a full read took as soon as its
// next read is capped again, so it never keeps the budget from others.
func TestReadSizerCappedGivesShareBack(t *testing.T) {
	b := &readBudget{max: 1}
	r := newReadSizer(log2(minSysReadChunk), log2(maxReadChunk))
	for i := range 6 {
		room := r.nextIn(b, sharedReadChunk)
		if held := b.held.Load(); held != 0 {
			t.Fatalf("read %d, capped at %d: %d shares held", i, sharedReadChunk, held)
		}
		r.recordIn(b, room, room)
	}
	if got := r.nextIn(b, math.MaxInt); got != maxReadChunk || b.held.Load() != 1 {
		t.Errorf("uncapped again after a full read: next() = %d with %d shares held, want %d and 1", got, b.held.Load(), maxReadChunk)
	}
}

// Readers that never grow above sharedReadChunk (a transport that lends
// its chunks, a sizer capped below it) take no share.
func TestReadSizerWithoutShare(t *testing.T) {
	b := &readBudget{max: 1}
	chunks := newReadSizer(unboundedShift, unboundedShift)
	small := newReadSizer(log2(minSysReadChunk), log2(sharedReadChunk))
	for range 4 {
		for _, r := range []*readSizer{&chunks, &small} {
			room := r.next(math.MaxInt)
			r.recordIn(b, room, room)
		}
	}
	chunks.releaseIn(b)
	small.releaseIn(b)
	if held := b.held.Load(); held != 0 {
		t.Errorf("%d shares held by sizers that never grow above %d", held, sharedReadChunk)
	}
}

// A socket's own reads follow the sizer: a burst far larger than libevent's
// 16 KiB arrives in reads that grow to maxReadChunk, so it costs a few
// system calls, and the reads shrink again once the stream turns small.
func TestSocketReadsAdapt(t *testing.T) {
	client, server, l := socketIO(t)
	server.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, should the test go wrong

	// readAll reads total bytes as the actor reads its own socket
	// (waitInSocket: the socket source, sized by the sizer) and returns
	// the sizes of the reads.
	readAll := func(total int) []int {
		var sizes []int
		for got := 0; got < total; {
			room := l.readRoom()
			n, err := l.src.readInto(&l.rbuf, room, true)
			if err != nil {
				t.Fatalf("read after %d of %d bytes: %v", got, total, err)
			}
			l.sizer.record(n, room)
			l.rbuf.dropAll()
			sizes = append(sizes, n)
			got += n
		}
		return sizes
	}

	const burst = 4 << 20
	werr := make(chan error, 1)
	go func() { _, err := client.Write(make([]byte, burst)); werr <- err }()
	sizes := readAll(burst)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	largest := 0
	for _, n := range sizes {
		largest = max(largest, n)
	}
	if largest <= 64<<10 || len(sizes) > burst/(16<<10)/2 {
		t.Errorf("a %d-byte burst took %d reads, the largest %d bytes: want reads above 64 KiB, fewer than half of 16 KiB reads' count", burst, len(sizes), largest)
	}

	// Small messages, one at a time: the reads shrink back to the floor.
	for i := range 10 {
		if _, err := client.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if got := readAll(4); len(got) != 1 {
			t.Fatalf("message %d came in %d reads", i, len(got))
		}
	}
	if got := l.sizer.next(math.MaxInt); got != minSysReadChunk {
		t.Errorf("after ten small messages the next read asks for %d, want %d", got, minSysReadChunk)
	}
	client.Close()
	if _, err := l.src.readInto(&l.rbuf, l.readRoom(), true); err != io.EOF {
		t.Errorf("a read after the peer closed: %v, want io.EOF", err)
	}
}
