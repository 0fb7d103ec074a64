package actor

import (
	"context"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/limiter"
)

// noLimit is the reader's credit when no watermark bounds it.
const noLimit = math.MaxInt64

// loopEvent is what the loops report to the actor, on one channel so that
// the actor's select stays small: a read (in: the bytes read, n of them;
// err) or a finished write (n, err, closeWrite). It is kept small on
// purpose: it sits in the frames of both the reader loop and the actor
// while they wait, and those frames decide whether an idle connection's
// goroutines fit the runtime's smallest stack.
type loopEvent struct {
	wrote      bool
	closeWrite bool    // a write: it was the half-close
	in         *Buffer // a read: what it brought, or nil (from carriers; see handIn)
	n          int64   // the bytes read or written
	err        error
}

// carriers holds the Buffers that carry chunks to the actor from another
// goroutine (a read from the reader loop, a WriteBuffer from its caller),
// each empty when it is put back: steady reading and relaying allocate
// none.
var carriers = sync.Pool{New: func() any { return new(Buffer) }}

// release drops the bytes of a read nobody will take.
func (ev *loopEvent) release() {
	if ev.in != nil {
		ev.in.dropAll()
		carriers.Put(ev.in)
		ev.in = nil
	}
}

// maxGather is the most reads of a socket one loop event gathers (see
// readLoop).
const maxGather = 4

// transportIO is the I/O machinery of one transport: its reader and writer
// loops (goroutines; the writer's side is in writeloop.go), the read
// credit they share with the actor, and the actor's parking in a socket.
// The actor starts the reader when it gets a transport (a socket's only
// once it must wait for something else than its socket, see
// actorState.waitInSocket; a transport it reads itself, see pullRead,
// only under a rate limit), the writer when it first has a write that
// must wait (see write), and joins both (stop) before it drops the
// transport or exits.
//
// Who touches what is said at each field. The fields set by
// newTransportIO (t, sys, rate, wakeActor, maxRead, rwm) do not change
// after it, nor do quit, moreCredit and events once made (makeChans,
// before the first loop starts); the actor starts the loops with go
// statements after that, so they see them.
type transportIO struct {
	t    Transport
	sys  sysConn       // the socket's side door, or nil (see sysConn; rawSocket says who uses which half)
	quit chan struct{} // closed by stop; also ends a rate-limit wait (quitContext); nil until makeChans
	wg   sync.WaitGroup

	// Rate limiting: the loops load rate before every operation and raise
	// throttled[d] while they wait on it (the loops write it, the actor
	// reads it); wakeActor tells the actor.
	rate      *atomic.Pointer[rateState]
	throttled [2]atomic.Bool // indexed by limiter.Dir
	wakeActor func()

	// The reader may read while undelivered < limit. The actor stores limit
	// (what the input may still take) and subtracts from undelivered what it
	// has appended; the reader adds what it read. The actor lowers limit
	// before it lowers undelivered, and allowed loads them in the other
	// order, so the reader can only underestimate. The actor's own reads
	// (waitInSocket, pullRead) land at once and never count in it.
	limit       atomic.Int64
	undelivered atomic.Int64
	maxRead     *atomic.Int64
	// rwm is the bufferevent's read watermark, which a setter stores
	// before the actor lowers limit: allowed caps by it too, so that a
	// read never takes more than the high mark, whenever it was set.
	rwm        *atomic.Pointer[watermark]
	moreCredit chan struct{} // buffered(1): limit was raised
	// src is the transport as a source, the one way its bytes come in,
	// and rbuf is where they land first. Both belong to whoever reads the
	// transport: the actor while it reads it itself (waitInSocket: a
	// socket it parks in; pullRead: a readPuller; the reader loop does not
	// run then), the
	// reader loop once startReader started it (the go statement hands
	// them over; the actor never reads again), and stop, which releases
	// rbuf after joining the reader. rbuf is empty whenever the reader
	// changes: the actor lands each of its reads at once.
	src  source
	rbuf Buffer

	// out is the transport as a sink, the one way bytes leave: the
	// actor's but while the writer loop has a write (see writeloop.go).
	out sink

	events   chan loopEvent // buffered(2): one read and one write result; the loops send, the actor receives (stop drains it)
	writec   chan writeReq  // buffered(1), made by the actor with the writer loop; one request in flight
	writerUp bool           // the writer loop runs (the actor's to read and set)
	full     bool           // the kernel took part of a direct write and the actor waits for room itself (pumpWrite, waitForRoom; the actor's)
	readerUp bool           // the reader loop runs (the actor's to read and set)

	// sizer decides how much each read asks for (see readSizer). Whoever
	// reads uses it, as src.
	sizer readSizer

	// park is how the actor of a socket waits in the socket itself, and
	// is woken out of that wait (see parker). It is here, not on the
	// actor's stack, so that an idle connection's actor fits the
	// runtime's smallest stack.
	park parker

	// pull is the transport while the actor reads it itself without
	// waiting (see readPuller, pullRead); the reader loop then does not
	// run.
	pull readPuller
}

// newTransportIO sets up the loops of t, which is ready for I/O, and starts
// the reader loop unless the actor reads t itself (a socket it parks in,
// a readPuller). wakeActor wakes the actor; the other arguments are the
// bufferevent's settings, which the loops load before each operation, and
// its count of bytes written, which the sink adds to.
func newTransportIO(t Transport, maxRead *atomic.Int64, rwm *atomic.Pointer[watermark], rate *atomic.Pointer[rateState], written *atomic.Int64, wakeActor func()) *transportIO {
	l := &transportIO{
		rwm:       rwm,
		t:         t,
		sys:       socketOf(t),
		rate:      rate,
		wakeActor: wakeActor,
		maxRead:   maxRead,
	}
	if l.sys != nil {
		l.park.conn = t.(deadliner) // both socket types have deadlines
	}
	l.src = sourceFor(t, l.sys, l)
	l.out = sinkFor(t, l.sys, written)
	l.sizer = sizerFor(l.src)
	if p, ok := t.(readPuller); ok {
		l.pull = p // the actor reads it (pullRead)
	} else if l.sys == nil {
		l.startReader()
	}
	return l
}

// startReader starts the reader loop. A socket's actor starts it only
// when it must wait for something its socket cannot wake it out of (see
// actorState.wait); every other transport's reader starts with the loops.
// Only the actor calls startReader.
func (l *transportIO) startReader() {
	l.makeChans()
	l.readerUp = true
	l.wg.Go(l.readLoop)
}

// makeChans makes the channels between the actor and the loops (quit,
// moreCredit, events) before the first loop starts; the go statement
// hands them over. Most sockets never start a loop (their actor reads
// and writes them itself): they make none. Until then the channels are
// nil, which every use allows: the actor's sends to moreCredit do not
// wait (and a reader that starts later looks at its credit first), its
// receives from events find nothing (only the loops send there), and
// stop has no quit to close. Only the actor calls makeChans.
func (l *transportIO) makeChans() {
	if l.quit != nil {
		return
	}
	l.quit = make(chan struct{})
	l.moreCredit = make(chan struct{}, 1)
	l.events = make(chan loopEvent, 2)
}

// allowed is how much more the input may take now: the limit the actor
// publishes, less what was read and not yet delivered, and never more
// than the read high watermark less that (the actor's limit may not yet
// know of a watermark just set; the high mark alone never exceeds the
// true credit).
//
// undelivered is loaded first. The actor, delivering a read of n bytes,
// first lowers limit by n (the input grew) and then undelivered by n: a
// reader that loaded limit first could pair the limit from before the
// delivery with the undelivered from after it and count those n bytes
// twice as credit, reading past the high watermark. A consumer that
// drains a little per read callback (libevent's ssl wm test) could then
// leave the input at the high watermark after its callback: reading
// stays suspended, no read comes to run the callback again, and the
// stream stalls. Loaded in this order, an undelivered from after the
// delivery comes with a limit from after it too.
func (l *transportIO) allowed() int64 {
	undelivered := l.undelivered.Load()
	n := l.limit.Load() - undelivered
	if l.rwm != nil {
		if high := int64(l.rwm.Load().high); high > 0 {
			n = min(n, high-undelivered)
		}
	}
	return n
}

// readRoom is what the next read asks for: the sizer's size within the
// input's room and the per-read maximum.
func (l *transportIO) readRoom() int {
	return l.sizer.next(int(min(l.allowed(), l.maxRead.Load())))
}

// lookFirst is what a reader that is about to wait for data does first:
// a socket's reader holding a share of the read budget reads without
// waiting, and if nothing is there gives its share back (readSizer.idle)
// and lowers *room to what it then asks for, so that it holds no share
// while it waits. It returns what that read brought; (0, nil) means the
// caller waits for a read of *room, as it does for any other reader. It
// returns before that wait, so its frame is not on a waiting actor's
// stack.
func (l *transportIO) lookFirst(room *int) (int, error) {
	if l.sys == nil || !l.sizer.holds() {
		return 0, nil
	}
	n, err := l.src.readInto(&l.rbuf, *room, false)
	if n == 0 && err == nil {
		l.sizer.idle()
		*room = min(*room, l.sizer.size())
	}
	return n, err
}

// quitContext is the context of the loops' rate-limit waits: done when
// stop closes quit. It is a single channel, so passing it as a
// context.Context allocates nothing, and the loops need no context of
// their own.
type quitContext struct{ quit <-chan struct{} }

// Deadline reports no deadline.
func (quitContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done returns quit, closed by stop.
func (q quitContext) Done() <-chan struct{} { return q.quit }

// Value returns nil: the context carries no values.
func (quitContext) Value(any) any { return nil }

// Err returns context.Canceled once stop closed quit, else nil.
func (q quitContext) Err() error {
	select {
	case <-q.quit:
		return context.Canceled
	default:
		return nil
	}
}

// setLimit publishes how many bytes the input may still take and wakes the
// reader if that grew. Only the actor stores the limit, and settle calls
// this every turn, mostly with the limit unchanged: that costs a load, not
// the locked exchange of a Swap.
func (l *transportIO) setLimit(n int64) {
	if l.limit.Load() == n {
		return
	}
	if old := l.limit.Swap(n); n > old {
		select {
		case l.moreCredit <- struct{}{}:
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
func (l *transportIO) delivered(n int) {
	l.undelivered.Add(-int64(n))
	select {
	case l.moreCredit <- struct{}{}:
	default:
	}
}

// readLoop is the reader goroutine: while the actor gives it credit
// (allowed), it waits for the rate limit, reads what the transport has
// (src) and hands it to the actor; it returns after the stream's end or
// error, or when stop quits.
//
// A read that filled what it asked for is followed, while the credit
// allows, by up to maxGather-1 more that do not wait (a socket has them;
// other sources find nothing), as long as the hand-off stays within one
// read of the sizer's largest size: a busy stream whose reads are still
// small thus reaches the actor in batches, and once the sizer has grown
// the reads, each is handed over alone.
func (l *transportIO) readLoop() {
	empty := 0 // reads in a row that returned nothing and no error
	for {
		allowed := l.allowed()
		if allowed <= 0 {
			select {
			case <-l.moreCredit:
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
		n, err := l.lookFirst(&room)
		if n == 0 && err == nil {
			n, err = l.src.readInto(&l.rbuf, room, true)
		}
		for last, r, k := n, room, 1; err == nil && last == r && k < maxGather && !rs.limited() && n+r <= l.sizer.max(); k++ {
			more := l.allowed() - int64(n)
			if more <= 0 {
				break
			}
			r = int(min(int64(r), more))
			if last, err = l.src.readInto(&l.rbuf, r, false); last == 0 {
				break
			}
			n += last
		}
		if n == 0 && err == nil {
			// A pipe found no room once data came (capReader), or a
			// Read returned nothing: io.Reader allows it, but one that
			// does so for good must not spin the reader, so, as
			// bufio.Reader, a hundred in a row end the stream.
			if empty++; empty < maxEmptyReads {
				continue
			}
			err = io.ErrNoProgress
		}
		empty = 0
		l.sizer.record(n, room)
		if n > 0 {
			l.undelivered.Add(int64(n))
			if rs.limited() {
				rs.consume(limiter.Read, n)
			}
		}
		if !l.send(loopEvent{in: l.handIn(), n: int64(n), err: err}) || err != nil {
			return
		}
	}
}

// handIn moves what the reader read to a Buffer of its own for the
// actor, in constant time (rbuf is emptied and keeps a chain array).
func (l *transportIO) handIn() *Buffer {
	if l.rbuf.n == 0 {
		return nil
	}
	in := carriers.Get().(*Buffer)
	in.moveAll(&l.rbuf)
	return in
}

// send hands a read to the actor; it reports false, dropping the read,
// when the loops are stopping. It is not inlined: its select's frame
// would then sit in readLoop's while the reader waits for data, and push
// an idle socket's reader past the runtime's smallest stack.
//
//go:noinline
func (l *transportIO) send(ev loopEvent) bool {
	select {
	case l.events <- ev:
		return true
	case <-l.quit:
		ev.release()
		return false
	}
}

// throttle returns the function that raises and lowers throttled[d].
func (l *transportIO) throttle(d limiter.Dir) func(bool) {
	return func(on bool) {
		if l.throttled[d].Swap(on) != on {
			l.wakeActor()
		}
	}
}

// stop ends both loops and waits for them. With closeT the transport is
// closed; otherwise its loops are unblocked through past deadlines, which
// are cleared again afterwards, and a transport without deadlines is
// closed anyway. It returns the error of closing the transport (detach
// drops net.ErrClosed).
func (l *transportIO) stop(closeT bool) error {
	if l.quit != nil {
		close(l.quit)
	}
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
	l.sizer.release() // nobody reads any more
	for len(l.events) > 0 {
		ev := <-l.events
		ev.release()
	}
	l.rbuf.release()
	l.out.release()
	if !closeT && hasDeadlines {
		d.SetReadDeadline(time.Time{})
		d.SetWriteDeadline(time.Time{})
	}
	return err
}
