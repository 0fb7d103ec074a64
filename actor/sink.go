package actor

import (
	"net"
	"sync/atomic"
)

// A sink is the one way bytes leave for a transport. Every write, on
// every transport, is one batch: the actor takes it from the front of
// the output (take), offers it first without waiting on its own goroutine
// where the transport can take bytes at once (write without wait), hands
// what is left to the writer loop (write with wait), and takes the result
// back through one function, actorState.onWrote, which calls done. What
// differs between a socket, a pair and a filter's underlying is only
// which sink writes (sinkFor):
//
//   - viewSink: a transport that takes bytes (any net.Conn); the batch is
//     views of the output's front, which stays in the output until
//     written (users cannot take from it: the front is frozen), and a
//     socket's side door writes it at once with one writev;
//   - chunkSink: a BufferWriter (a pair's pipe, a filter's view of its
//     underlying); the batch is the output's first chunks, moved out by
//     ownership, and what the transport does not take goes back.
//
// The batch is the actor's but while the writer loop has it (between
// transportIO.write and the result on events). Every write adds what the
// transport took to the bufferevent's count (Bufferevent.Written) before
// it returns, so the count is exact even for a write whose result the
// actor never takes in because it stopped.
type sink interface {
	// take makes the next batch from the front of src, at most max
	// bytes, and returns its length and how many of them it moved out of
	// src (0 when the batch only views src).
	take(src *Buffer, max int) (n, moved int)
	// write writes the batch, at most limit bytes of it, and returns how
	// many it wrote. With wait it blocks until the transport took them
	// or failed; without, it takes what the transport takes at once,
	// possibly nothing, and never blocks.
	write(limit int64, wait bool) (int64, error)
	// done brings src in line with the batch's result (n bytes written):
	// what was written leaves src, the rest is at its front again. The
	// batch is empty after it.
	done(src *Buffer, n int64)
	// release drops the batch: the transport is being let go.
	release()
}

// sinkFor returns the sink of t: its chunk method, or its Write (with the
// socket's side door sys for writes that do not wait). Its writes add
// to written.
func sinkFor(t Transport, sys sysConn, written *atomic.Int64) sink {
	if bw, ok := t.(BufferWriter); ok {
		_, partial := t.(partialWriter)
		return &chunkSink{bw: bw, partial: partial, written: written}
	}
	return &viewSink{t: t, sys: sys, written: written}
}

// viewSink writes views of the output with Write (net.Buffers, so a
// *net.TCPConn gets one writev), or, without waiting, through a socket's
// side door.
type viewSink struct {
	t     Transport
	sys   sysConn     // a socket's side door, or nil: no write without waiting
	views [][]byte    // the batch: views of the output's front
	bufs  net.Buffers // the views a waiting write hands Write, reused
	out   net.Buffers // bufs as WriteTo consumes them

	written *atomic.Int64 // the bufferevent's count of bytes written
}

// take is sink.take: views of up to max bytes and maxWriteSlices chunks,
// since more would not fit the socket's one writev (sysConn.tryWrite),
// and what it left out would look like a full kernel buffer.
func (s *viewSink) take(src *Buffer, max int) (int, int) {
	s.views = src.slices(s.views[:0], max)
	if len(s.views) > maxWriteSlices {
		clear(s.views[maxWriteSlices:])
		s.views = s.views[:maxWriteSlices]
	}
	return bufsLen(s.views), 0
}

// write is sink.write: through the side door without waiting, else
// Write.
func (s *viewSink) write(limit int64, wait bool) (n int64, err error) {
	if !wait {
		if s.sys == nil {
			return 0, nil
		}
		n, err = s.sys.tryWrite(cut(s.views, limit))
		s.written.Add(n)
		return n, err
	}
	// WriteTo consumes the slice it is called on: a copy, so that the
	// views stay whole for done.
	s.bufs = cut(append(s.bufs[:0], s.views...), limit)
	s.out = s.bufs
	n, err = s.out.WriteTo(s.t)
	s.written.Add(n)
	clear(s.bufs)
	s.out = nil
	return n, err
}

// done is sink.done: the written bytes are drained from the output.
func (s *viewSink) done(src *Buffer, n int64) {
	src.drain(int(n))
	s.release()
}

// release is sink.release: the views are dropped.
func (s *viewSink) release() {
	clear(s.views)
	s.views = s.views[:0]
}

// cut shortens bufs to at most limit bytes, in place.
func cut(bufs net.Buffers, limit int64) net.Buffers {
	for i, p := range bufs {
		if limit <= 0 {
			clear(bufs[i:])
			return bufs[:i]
		}
		if int64(len(p)) > limit {
			bufs[i] = p[:limit]
		}
		limit -= int64(len(bufs[i]))
	}
	return bufs
}

// bufsLen returns the bytes in bufs.
func bufsLen(bufs [][]byte) int {
	n := 0
	for _, p := range bufs {
		n += len(p)
	}
	return n
}

// chunkSink hands whole chunks to a BufferWriter.
type chunkSink struct {
	bw      BufferWriter
	partial bool   // a partialWriter: a waiting WriteBuffer may return early
	batch   Buffer // the chunks taken from the output
	part    Buffer // the batch's first limit bytes, when a limit cuts it
	written *atomic.Int64
}

// take is sink.take: whole chunks from the front of src, up to max bytes;
// a first chunk larger than max gives its first max bytes, copied, so a
// small per-write maximum still makes small writes.
func (s *chunkSink) take(src *Buffer, max int) (int, int) {
	if src.n <= max {
		s.batch.moveAll(src) // as whenever the output drains between writes: one move
		return s.batch.n, s.batch.n
	}
	for src.n > 0 {
		c := src.chunks[src.head]
		if s.batch.n+c.len() > max {
			if s.batch.n == 0 {
				s.batch.moveN(src, max)
			}
			break
		}
		s.batch.push(src.popFront())
	}
	return s.batch.n, s.batch.n
}

// write is sink.write through WriteBuffer, which moves the chunks. A
// count that does not match what the batch lost is an error wrapping
// ErrInvalid, and a waiting write that took less without saying why
// io.ErrShortWrite (unless the transport is a partialWriter).
func (s *chunkSink) write(limit int64, wait bool) (int64, error) {
	buf := &s.batch
	if int64(buf.n) > limit {
		s.part.moveN(buf, int(limit))
		buf = &s.part
	}
	before := buf.n
	n, err := s.bw.WriteBuffer(buf, wait)
	taken, err := checkWriteBuffer(before, n, buf, err, wait && !s.partial)
	s.written.Add(taken)
	if buf == &s.part {
		s.batch.prependAll(&s.part)
	}
	return taken, err
}

// done is sink.done: what the transport did not take goes back to the
// front of the output, where the write low watermark and the user see it.
func (s *chunkSink) done(src *Buffer, _ int64) {
	if s.batch.n > 0 {
		src.prependAll(&s.batch)
	}
}

// release is sink.release: the chunks the transport never took are
// dropped.
func (s *chunkSink) release() {
	s.batch.dropAll()
	s.part.dropAll()
}
