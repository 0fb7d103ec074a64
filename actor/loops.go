package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/limiter"
)

// noLimit is the reader's credit when no watermark bounds it.
const noLimit = math.MaxInt64

// loopEvent is what the loops report to the actor, on one channel so that
// the actor's select stays small: a read (the chunks, err) or a finished
// write (n, err, closeWrite). It is kept small on purpose: it sits in the
// frames of both the reader loop and the actor while they wait, and those
// frames decide whether an idle connection's goroutines fit the runtime's
// smallest stack. The chunks of a read therefore travel in a pooled batch.
type loopEvent struct {
	wrote      bool
	cs         *chunkBatch // a read: the chunks holding what was read, or nil
	nc         int         // how many of cs are set
	n          int64       // a write: bytes written
	closeWrite bool        // a write: it was the half-close
	err        error
}

// chunkBatch carries the chunks of one read from the reader loop to the
// actor; batches are pooled, so steady reading allocates none.
type chunkBatch [maxMoved]*chunk

var batchPool = sync.Pool{New: func() any { return new(chunkBatch) }}

// add appends c to the read's chunks; the caller keeps nc < maxMoved.
func (ev *loopEvent) add(c *chunk) {
	if ev.cs == nil {
		ev.cs = batchPool.Get().(*chunkBatch)
	}
	ev.cs[ev.nc] = c
	ev.nc++
}

// chunks returns the read's chunks; the actor takes them over, then calls
// done.
func (ev *loopEvent) chunks() []*chunk {
	if ev.cs == nil {
		return nil
	}
	return ev.cs[:ev.nc]
}

// done gives the batch back once its chunks have been taken.
func (ev *loopEvent) done() {
	if ev.cs != nil {
		clear(ev.cs[:ev.nc])
		batchPool.Put(ev.cs)
		ev.cs, ev.nc = nil, 0
	}
}

// release drops the chunks of a read nobody will take.
func (ev *loopEvent) release() {
	for _, c := range ev.chunks() {
		c.release()
	}
	ev.done()
}

// maxMoved is the most chunks one loop event hands the actor: a
// BufferReader's read that brings more is handed over in several events.
const maxMoved = 16

// maxSysReads is the most socket reads one loop event gathers (readSys).
const maxSysReads = 4

type writeReq struct {
	bufs       *net.Buffers // views of output the actor will not touch until done
	buf        *Buffer      // or, for a BufferWriter, chunks handed over
	closeWrite bool         // half-close instead of writing
}

// loops are the reader and writer goroutines of one transport. The actor
// starts the reader when it gets a transport (a socket's only once it must
// wait for something else than its socket, see actorState.waitInSocket; a
// transport it reads itself, see pullRead, only under a rate limit), the
// writer when it first has a write that must wait (see write), and joins
// both (stop) before it drops the transport or exits.
type loops struct {
	t    Transport
	sys  sysConn       // the socket's side door, or nil (see sysConn)
	quit chan struct{} // closed by stop; also ends a rate-limit wait (quitContext)
	wg   sync.WaitGroup

	// Rate limiting: the loops load rate before every operation and raise
	// throttled[d] while they wait on it; wake tells the actor.
	rate      *atomic.Pointer[rateState]
	throttled [2]atomic.Bool // indexed by limiter.Dir
	poke      func()
	trunc     net.Buffers // a write batch cut to the rate allowance

	// The reader may read while inflight < limit. The actor stores limit
	// (what the input may still take) and subtracts from inflight what it
	// has appended; the reader adds what it read. The actor lowers limit
	// before it lowers inflight, and allowed loads them in the other
	// order, so the reader can only underestimate.
	limit    atomic.Int64
	inflight atomic.Int64
	maxRead  *atomic.Int64
	// rwm is the bufferevent's read watermark, which a setter stores
	// before the actor lowers limit: allowed caps by it too, so that a
	// read never takes more than the high mark, whenever it was set.
	rwm  *atomic.Pointer[watermark]
	wake chan struct{} // buffered(1): limit was raised
	rbuf Buffer        // a BufferReader's reads land here first

	events   chan loopEvent // buffered(2): one read and one write result
	writec   chan writeReq  // buffered(1), made with the writer loop; one request in flight
	writerUp bool           // the writer loop runs (the actor's to read and set)
	readerUp bool           // the reader loop runs (the actor's to read and set)

	// sizer decides how much each read asks for (see readSizer). Whoever
	// reads uses it: the reader loop once it runs, the actor reading a
	// socket itself (readNow) or pulling (pullRead) before.
	sizer readSizer

	// park is how the actor of a socket waits in the socket itself, and
	// is kicked out of that wait (see parker); rev is what its own read
	// brought (readNow). It is here, not on the actor's stack, so that
	// an idle connection's actor fits the runtime's smallest stack.
	park parker
	rev  loopEvent

	// pull is the transport while the actor reads it itself (see
	// readPuller, pullRead); the reader loop then does not run.
	pull readPuller
}

func startLoops(t Transport, maxRead *atomic.Int64, rwm *atomic.Pointer[watermark], rate *atomic.Pointer[rateState], poke func()) *loops {
	l := &loops{
		rwm:     rwm,
		t:       t,
		sys:     socketOf(t),
		quit:    make(chan struct{}),
		rate:    rate,
		poke:    poke,
		maxRead: maxRead,
		wake:    make(chan struct{}, 1),
		events:  make(chan loopEvent, 2),
	}
	if l.sys != nil {
		l.park.conn = t.(deadliner) // both socket types have deadlines
	}
	l.sizer = sizerFor(t, l.sys)
	if p, ok := t.(readPuller); ok {
		l.pull = p // the actor reads it (pullRead)
	} else if l.sys == nil {
		l.startReader()
	}
	return l
}

// startReader starts the reader loop. A socket's actor starts it only
// when it must wait for something its socket cannot kick it out of (see
// actorState.wait); every other transport's reader starts with the loops.
// Only the actor calls startReader.
func (l *loops) startReader() {
	l.readerUp = true
	l.wg.Go(l.readLoop)
}

// allowed is how much more the input may take now: the limit the actor
// publishes, less what was read and not yet delivered, and never more
// than the read high watermark less that (the actor's limit may not yet
// know of a watermark just set; the high mark alone never exceeds the
// true credit).
//
// inflight is loaded first. The actor, delivering a read of n bytes,
// first lowers limit by n (the input grew) and then inflight by n: a
// reader that loaded limit first could pair the limit from before the
// delivery with the inflight from after it and count those n bytes
// twice as credit, reading past the high watermark. A consumer that
// drains a little per read callback (libevent's ssl wm test) could then
// leave the input at the high watermark after its callback: reading
// stays suspended, no read comes to run the callback again, and the
// stream stalls. Loaded in this order, an inflight from after the
// delivery comes with a limit from after it too.
func (l *loops) allowed() int64 {
	inflight := l.inflight.Load()
	n := l.limit.Load() - inflight
	if l.rwm != nil {
		if high := int64(l.rwm.Load().high); high > 0 {
			n = min(n, high-inflight)
		}
	}
	return n
}

// readNow is the actor's own read of a socket (see parker): one read of at
// most the per-read maximum, into rev, waiting for data first. The
// caller first makes sure that a kick can end the wait, and that the
// input may take more (allowed) and no rate limit applies. Unlike the
// reader loop (readSys) it does not gather several reads per turn: that
// amortised the hand-off to the actor, and here there is none; one read
// per turn is libevent's rule, and it bounds what a busy connection holds
// to one read's chunk (measured: peak RSS under 50 streams 9.0-9.7 MiB
// against 10.6 with four reads per turn, throughput within the noise).
func (l *loops) readNow() (int, error) {
	room := l.sizer.next(int(min(l.allowed(), l.maxRead.Load())))
	c, err := l.sys.read(room, true)
	n := 0
	if c != nil {
		l.rev.add(c)
		n = c.len()
	}
	l.inflight.Add(int64(n))
	l.sizer.record(n, room)
	return n, err
}

// quitContext is the context of the loops' rate-limit waits: done when
// stop closes quit. It is a single channel, so passing it as a
// context.Context allocates nothing, and the loops need no context of
// their own.
type quitContext struct{ quit <-chan struct{} }

func (quitContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (q quitContext) Done() <-chan struct{}     { return q.quit }
func (quitContext) Value(any) any               { return nil }
func (q quitContext) Err() error {
	select {
	case <-q.quit:
		return context.Canceled
	default:
		return nil
	}
}

// write hands req to the writer loop, starting it the first time. The
// writer is started lazily because on a socket the actor writes directly
// whatever the kernel takes at once (tryWrite), so a connection that never
// fills its send buffer never needs the goroutine, nor its stack. Only the
// actor calls write, and only with no request in flight.
func (l *loops) write(req writeReq) {
	if !l.writerUp {
		l.writerUp = true
		l.writec = make(chan writeReq, 1)
		l.wg.Go(l.writeLoop)
	}
	l.writec <- req // buffered(1): nothing else in flight
}

// setLimit publishes how many bytes the input may still take and wakes the
// reader if that grew.
func (l *loops) setLimit(n int64) {
	if old := l.limit.Swap(n); n > old {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// delivered tells the reader that n bytes it read are now in the input
// (or, with an input stage, in the raw input) and wakes it: the reader may
// have found no credit while those bytes were in flight, and when they
// land in the raw input, or when the limit comes from the output's room
// rather than the input's, the limit itself does not grow, so nothing
// else would wake it.
func (l *loops) delivered(n int) {
	l.inflight.Add(-int64(n))
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loops) readLoop() {
	for {
		allowed := l.allowed()
		if allowed <= 0 {
			select {
			case <-l.wake:
				continue
			case <-l.quit:
				return
			}
		}
		want := int(min(allowed, l.maxRead.Load()))
		rs := l.rate.Load()
		if rs.limited() {
			n, err := rs.take(quitContext{l.quit}, limiter.Read, l.throttle(limiter.Read))
			if err != nil {
				return // stopped
			}
			want = int(min(int64(want), n))
		}
		room := l.sizer.next(want)
		var (
			ev  loopEvent
			n   int
			err error
		)
		if br, ok := l.t.(BufferReader); ok {
			n, err = l.readBuffer(br, &ev, room)
			if n == 0 && err == nil && l.rbuf.n == 0 {
				continue // a capReader found no room once data came
			}
			l.sizer.record(n, room)
			if n > 0 {
				l.inflight.Add(int64(n))
				if rs.limited() {
					rs.consume(limiter.Read, n)
				}
			}
			// A read that brought more chunks than one event carries
			// goes over in several; the error rides on the last.
			for l.rbuf.n > 0 {
				if !l.send(ev) {
					return
				}
				ev = loopEvent{}
				l.rbuf.popChunks(&ev)
			}
			ev.err = err
			if !l.send(ev) || err != nil {
				return
			}
			continue
		} else if l.sys != nil {
			n, err = l.readSys(&ev, room, rs.limited())
		} else {
			c := newReadChunk(room)
			n, err = l.t.Read(c.free()[:room])
			c.commit(n)
			ev.add(c)
		}
		ev.err = err
		if n > 0 {
			l.inflight.Add(int64(n))
			if rs.limited() {
				rs.consume(limiter.Read, n)
			}
		}
		l.sizer.record(n, room)
		if !l.send(ev) || err != nil {
			return
		}
	}
}

// send hands a read to the actor; it reports false, dropping the read,
// when the loops are stopping. It is not inlined: its select's frame
// would then sit in readLoop's while the reader waits for data, and push
// an idle socket's reader past the runtime's smallest stack.
//
//go:noinline
func (l *loops) send(ev loopEvent) bool {
	select {
	case l.events <- ev:
		return true
	case <-l.quit:
		ev.release()
		return false
	}
}

// readBuffer reads from a BufferReader into the loops' own buffer and
// moves the first chunks into ev. It returns the bytes read and the read's
// error, or one wrapping ErrInvalid when the count the transport returned
// does not match what the buffer gained.
func (l *loops) readBuffer(br BufferReader, ev *loopEvent, want int) (int, error) {
	before := l.rbuf.n
	var (
		n   int
		err error
	)
	if cr, ok := br.(capReader); ok {
		n, err = cr.readBufferCapped(&l.rbuf, want, l)
	} else {
		n, err = br.ReadBuffer(&l.rbuf, want)
	}
	got := l.rbuf.n - before
	if n != got && err == nil {
		err = fmt.Errorf("%w: transport's ReadBuffer reported %d bytes and moved %d", ErrInvalid, n, got)
	}
	l.rbuf.popChunks(ev)
	return got, err
}

// readSys reads from a socket's side door into ev: one read of up to room
// bytes, waiting for data, and then, while reads fill their chunk and the
// credit allows, up to maxSysReads-1 more that do not wait, as long as
// the hand-off stays within one read of the sizer's largest size. A busy
// stream whose reads are still small thus reaches the actor in batches of
// several reads per hand-off; once the sizer has grown the reads, each is
// handed over alone, so a hand-off holds no more than the actor's own
// read would (readNow); an interactive stream is handed over read by
// read. It returns the bytes read and the error that ended the stream, if
// any.
func (l *loops) readSys(ev *loopEvent, room int, limited bool) (int, error) {
	c, err := l.sys.read(room, true)
	if c == nil {
		return 0, err
	}
	ev.add(c)
	n := c.len()
	for err == nil && c.len() == room && ev.nc < maxSysReads && !limited && n+room <= l.sizer.max() {
		allowed := l.allowed() - int64(n)
		if allowed <= 0 {
			break
		}
		room = int(min(int64(room), allowed))
		if c, err = l.sys.read(room, false); c == nil {
			break
		}
		ev.add(c)
		n += c.len()
	}
	return n, err
}

func (l *loops) writeLoop() {
	for {
		select {
		case req := <-l.writec:
			res := loopEvent{wrote: true}
			if req.closeWrite {
				res.closeWrite = true
				if cw, ok := l.t.(closeWriter); ok {
					res.err = cw.CloseWrite()
				}
			} else if req.buf != nil {
				res.n, res.err = l.writeBuffer(req.buf)
				if rs := l.rate.Load(); rs.limited() {
					rs.consume(limiter.Write, int(res.n))
				}
				if res.err != nil {
					req.buf.dropAll() // not taken: ours to drop
				} // else what a partialWriter left goes back to the output

			} else {
				res.n, res.err = l.writeBufs(req.bufs)
			}
			select {
			case l.events <- res:
				l.park.kick() // the actor may be waiting in the socket
			case <-l.quit:
				return
			}
		case <-l.quit:
			return
		}
	}
}

// writeBuffer hands buf to the BufferWriter, waiting, and returns what
// it took (see checkWriteBuffer).
func (l *loops) writeBuffer(buf *Buffer) (int64, error) {
	before := buf.n
	n, err := l.t.(BufferWriter).WriteBuffer(buf, true)
	_, partial := l.t.(partialWriter)
	return checkWriteBuffer(before, n, buf, err, !partial)
}

// checkWriteBuffer returns what a BufferWriter took from buf, which held
// before bytes, and the error to report: an error wrapping ErrInvalid
// when the count n it returned does not match, and io.ErrShortWrite when
// a waiting call took less without saying why.
func checkWriteBuffer(before int, n int64, buf *Buffer, err error, wait bool) (int64, error) {
	taken := int64(before - buf.n)
	if err == nil {
		switch {
		case n != taken:
			err = fmt.Errorf("%w: transport's WriteBuffer reported %d bytes and took %d", ErrInvalid, n, taken)
		case wait && buf.n > 0:
			err = io.ErrShortWrite
		}
	}
	return taken, err
}

// writeBufs writes the batch, first waiting for the rate limit, and never
// hands the transport more than it allows.
func (l *loops) writeBufs(bufs *net.Buffers) (int64, error) {
	rs := l.rate.Load()
	if !rs.limited() {
		return bufs.WriteTo(l.t)
	}
	allow, err := rs.take(quitContext{l.quit}, limiter.Write, l.throttle(limiter.Write))
	if err != nil {
		return 0, err
	}
	l.trunc = l.trunc[:0]
	for _, p := range *bufs {
		if allow <= 0 {
			break
		}
		if int64(len(p)) > allow {
			p = p[:allow]
		}
		l.trunc = append(l.trunc, p)
		allow -= int64(len(p))
	}
	n, err := l.trunc.WriteTo(l.t)
	rs.consume(limiter.Write, int(n))
	return n, err
}

// throttle returns the function that raises and lowers throttled[d].
func (l *loops) throttle(d limiter.Dir) func(bool) {
	return func(on bool) {
		if l.throttled[d].Swap(on) != on {
			l.poke()
		}
	}
}

// stop ends both loops and waits for them. With closeT the transport is
// closed; otherwise its loops are unblocked through past deadlines, which
// are cleared again afterwards, and a transport without deadlines is
// closed anyway. It returns the error of closing the transport.
func (l *loops) stop(closeT bool) error {
	close(l.quit)
	var err error
	d, hasDeadlines := l.t.(deadliner)
	if closeT || !hasDeadlines {
		err = l.t.Close()
	} else {
		past := time.Unix(1, 0)
		d.SetReadDeadline(past)
		d.SetWriteDeadline(past)
	}
	l.wg.Wait()
	for len(l.events) > 0 {
		ev := <-l.events
		ev.release()
	}
	l.rbuf.release()
	if !closeT && hasDeadlines {
		d.SetReadDeadline(time.Time{})
		d.SetWriteDeadline(time.Time{})
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
