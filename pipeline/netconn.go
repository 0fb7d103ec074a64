package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/deadline"
)

// DefaultLinger bounds how long [Conn.Close] waits for buffered output to
// be written when no write deadline is set.
const DefaultLinger = 5 * time.Second

// closeMode says what closing a view does to its bufferevent.
type closeMode uint8

const (
	// closeDrain is the public Conn's Close: write what is buffered, then
	// close the bufferevent (bounded by the write deadline or
	// DefaultLinger).
	closeDrain closeMode = iota
	// closeFree is a filter's: libevent's free. Drop what the view holds,
	// clear the bufferevent's callbacks, and close it only when the
	// filter has CloseOnFree.
	closeFree
)

// Conn is a net.Conn view of a bufferevent: Read takes from its input,
// Write appends to its output, and the bufferevent does the I/O. It lets
// crypto/tls, net/http and any other net.Conn user run over a pair, a
// socket bufferevent or a stack of filters. Filters use the same view as
// their transport.
//
// A Conn takes over its bufferevent's callbacks (as a libevent filter
// does) and manages its reading: it enables reading when a Read waits, and
// pauses it while the view holds the read high watermark of unread input
// (DefaultChannelHighWatermark if none is set). Write copies p and blocks
// while the view and the bufferevent's output hold its write high
// watermark (DefaultChannelHighWatermark if none is set); it never keeps
// p. What a Write accepted is on its way when it returns: the view
// flushes the bufferevent's output stage (Flush(Write, Flush)) as soon as
// the bufferevent takes the bytes, so a stage that holds bytes back (a
// compressor) does not keep them from the peer; over a stack of filters,
// each filter's output stage is flushed as the bytes reach it. Since the write callback is the view's, the view also sets the
// bufferevent's write low watermark to its high mark, so that the
// callback runs after every write. Do not set the bufferevent's
// callbacks, nor read or write it directly, while a Conn is attached.
//
// Besides Read and Write, ReadBuffer and WriteBuffer move whole chunks
// by ownership (actor.BufferReader and actor.BufferWriter), so a
// bufferevent whose transport is a Conn, as a filter's is, copies no
// bytes through it.
//
// All methods are safe for concurrent use. Deadlines behave as net.Conn's:
// a timeout returns an error whose Timeout() is true and which matches
// os.ErrDeadlineExceeded. Read returns io.EOF, bare, after the
// bufferevent's EOF and every byte before it. Other errors are
// *net.OpError values wrapping the cause: ErrClosed after Close (and, for
// Write, after CloseWrite), or the bufferevent's error. A Conn not made
// by NewConn (a zero value, a nil pointer) fails every method with an
// error wrapping ErrInvalid, and its addresses are nil.
type Conn struct {
	b    *actor.Bufferevent
	mode closeMode
	// closeB closes b when the view is closed (closeFree mode; a
	// closeDrain view always closes b).
	closeB bool
	// userLow is b's write low watermark before the view set ourLow.
	userLow, ourLow int
	// forwardConnected passes b's Connected on to the filter; a TLS
	// filter reports its own once the handshake completes.
	forwardConnected bool
	// upper is the filter whose transport this view is (nil for a
	// public Conn); it is told of b's progress when it needs to be.
	upper atomic.Pointer[actor.Bufferevent]

	mu     sync.Mutex // guards following
	rbuf   actor.Buffer
	rerr   error // io.EOF or b's read error, reported once rbuf is empty
	readOn bool  // the view enabled b's reading and has not paused it
	sawEOF bool  // Read has returned io.EOF
	wbuf   actor.Buffer
	werr   error
	inB    int  // b's output length when its write callback last ran
	poked  bool // a Trigger is on its way to b's write callback
	// armed: b's output held bytes when its write callback last ran, so
	// the write that sends them will run the callback again (the view
	// set the write low watermark so that every write does), and that
	// callback takes wbuf: a hand-over needs no Trigger meanwhile.
	armed   bool
	wclosed bool
	closed  bool
	// draining is set while the filter above drains b: b stopping then
	// is the drain's doing, not an error to report, and Read waits for
	// the filter's Close, which follows.
	draining bool
	fwd      func(actor.Event)
	fwdQ     []actor.Event

	// flushWrites: the view is public (NewConn), so its Writes are
	// flushed through b's output stage (flushOutput). unflushed says
	// what a Write put in b's output has not been flushed yet; flushing
	// guards against the flush's own write callback. Only b's goroutine
	// uses the last two.
	flushWrites, unflushed, flushing bool

	readable chan struct{} // buffered(1): input, EOF or an error arrived
	writable chan struct{} // buffered(1): b took output, or an error
	done     chan struct{} // closed by Close

	// wake tells the filter's actor that b wrote (NotifyProgress).
	wake atomic.Pointer[func()]
	// rwake tells the filter's actor that Read would not wait now
	// (NotifyReadable); watchStop ends the goroutine that calls it when b
	// stops, which no callback reports.
	rwake     atomic.Pointer[func()]
	watchMu   sync.Mutex // serialises notifyReadable
	watchStop chan struct{}
	watchWG   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	rdl, wdl *deadline.Deadline
}

// NewConn returns a net.Conn view of b; see [Conn]. Closing the Conn
// writes what is buffered and closes b. NewConn fails with an error
// wrapping ErrInvalid for a nil b, and ErrClosed when b has stopped.
func NewConn(b *actor.Bufferevent) (*Conn, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: nil bufferevent", ErrInvalid)
	}
	if isDone(b.Done()) {
		return nil, fmt.Errorf("new conn: %w", ErrClosed)
	}
	c := newConn(b, closeDrain, true)
	c.flushWrites = true
	// A Write is on its way through every stage of a stack: the views
	// between the filters below flush their bufferevents' output stages
	// too, as they hand bytes down.
	t, ok := b.Transport().(*filterTransport)
	for range maxStack {
		if !ok {
			break
		}
		t.c.mu.Lock()
		t.c.flushWrites = true
		t.c.mu.Unlock()
		t, ok = t.c.b.Transport().(*filterTransport)
	}
	return c, nil
}

// maxStack bounds the walk down a stack of filters.
const maxStack = 64

func newConn(b *actor.Bufferevent, mode closeMode, closeB bool) *Conn {
	c := &Conn{
		b:                b,
		mode:             mode,
		closeB:           closeB,
		forwardConnected: true,
		readable:         make(chan struct{}, 1),
		writable:         make(chan struct{}, 1),
		done:             make(chan struct{}),
		rdl:              deadline.New(),
		wdl:              deadline.New(),
	}
	b.SetCallbacks(actor.Callbacks{Read: c.onRead, Write: c.onWrite, Event: c.onEvent})
	// The write callback is the view's: have it run after every write of
	// b, not only when b's output drains to its low watermark, so the view
	// sees each write (exact write limits, progress for the filter above)
	// and refills b without waiting for it to run dry. The low watermark
	// serves nothing else; free puts it back.
	low, high, _ := b.Watermark(actor.Write)
	c.userLow, c.ourLow = low, high
	if high == 0 {
		c.ourLow = math.MaxInt32
	}
	b.SetWatermark(actor.Write, c.ourLow, high)
	return c
}

// Bufferevent returns the bufferevent the Conn is a view of (nil for a
// Conn not made by NewConn).
func (c *Conn) Bufferevent() *actor.Bufferevent {
	if c == nil {
		return nil
	}
	return c.b
}

// errZeroConn is what every method of a Conn not made by NewConn (a zero
// value, a nil pointer) returns, as net's connections answer EINVAL
// rather than panic.
var errZeroConn = fmt.Errorf("%w: Conn not made by NewConn", ErrInvalid)

// zero reports whether c was not made by NewConn.
func (c *Conn) zero() bool { return c == nil || c.b == nil }

// Read reads up to len(p) bytes of the bufferevent's input. It blocks
// until input is there, EOF or an error arrived, the read deadline passes
// or the Conn is closed; it returns io.EOF (unwrapped) after EOF once every
// byte before it was read.
func (c *Conn) Read(p []byte) (int, error) {
	if c.zero() {
		return 0, errZeroConn
	}
	return c.read(len(p), func() (int, error) { return c.rbuf.Read(p) })
}

// read is Read and ReadBuffer: take moves up to want bytes out of rbuf,
// with c.mu held and rbuf not empty.
func (c *Conn) read(want int, take func() (int, error)) (int, error) {
	return c.readOrTry(want, true, take)
}

// tryReadBuffer is ReadBuffer without waiting: 0, nil when Read would
// wait (a filter's TryReadBuffer).
func (c *Conn) tryReadBuffer(dst *actor.Buffer, max int) (int, error) {
	return c.readOrTry(max, false, func() (int, error) { return dst.MoveFromN(&c.rbuf, max) })
}

func (c *Conn) readOrTry(want int, wait bool, take func() (int, error)) (int, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, c.opError("read", ErrClosed)
		}
		if isDone(c.rdl.Wait()) {
			c.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		if want <= 0 {
			c.mu.Unlock()
			return 0, nil
		}
		if c.rbuf.Len() == 0 && c.rerr == nil && !c.draining && isDone(c.b.Done()) {
			c.rerr = c.stoppedError()
		}
		if c.rbuf.Len() > 0 {
			n, err := take()
			if err != nil {
				c.mu.Unlock()
				return n, c.opError("read", err)
			}
			if !c.readOn && c.rerr == nil && c.rbuf.Len() < c.readHigh()/2 {
				c.readOn = true
				c.b.Enable(actor.Read)
			}
			more := c.rbuf.Len() > 0 || c.rerr != nil
			c.mu.Unlock()
			if more {
				signal(c.readable) // another reader may be waiting
			}
			return n, nil
		}
		if err := c.rerr; err != nil {
			if err == io.EOF {
				c.sawEOF = true
			}
			c.mu.Unlock()
			signal(c.readable)
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, c.opError("read", err)
		}
		if !c.readOn {
			c.readOn = true
			c.b.Enable(actor.Read)
		}
		stopped := c.b.Done()
		if c.draining {
			stopped = nil
		}
		c.mu.Unlock()
		if !wait {
			return 0, nil
		}
		select {
		case <-c.readable:
		case <-c.done:
		case <-c.rdl.Wait():
		case <-stopped:
		}
	}
}

// ReadBuffer moves up to max bytes of the bufferevent's input to the end
// of dst by ownership, without copying whole chunks (actor.BufferReader:
// a bufferevent whose transport is a Conn reads this way). It blocks and
// ends as Read does, and returns how many bytes it moved, with Read's
// errors (io.EOF, bare, at the end). A nil dst fails with ErrInvalid, and
// a max of 0 or less returns 0, nil at once.
func (c *Conn) ReadBuffer(dst *actor.Buffer, max int) (int, error) {
	if c.zero() {
		return 0, errZeroConn
	}
	if dst == nil {
		return 0, c.opError("read", fmt.Errorf("%w: nil buffer", ErrInvalid))
	}
	return c.read(max, func() (int, error) { return dst.MoveFromN(&c.rbuf, max) })
}

// Write copies p to the bufferevent's output. It blocks while the output
// (with what the view holds for it) is at the write high watermark, and
// returns the number of bytes accepted: len(p), or fewer with an error
// when the write deadline passes, the Conn is closed or the bufferevent
// fails. Accepted bytes are written by the bufferevent in order, and
// flushed through its output stage (see Conn).
func (c *Conn) Write(p []byte) (int, error) {
	if c.zero() {
		return 0, errZeroConn
	}
	n := 0
	_, err := c.admit(true, func() int { return len(p) - n }, func(room int) (int, error) {
		k := min(room, len(p)-n)
		c.wbuf.Write(p[n : n+k])
		n += k
		return k, nil
	})
	return n, err
}

// WriteBuffer moves src's bytes to the bufferevent's output by ownership,
// without copying whole chunks (actor.BufferWriter: a bufferevent whose
// transport is a Conn hands its output over this way). With wait it
// blocks as Write does and returns the number of bytes taken: all of src,
// or fewer with the error that stopped it (Write's errors), the rest
// staying in src. Without wait it takes only what fits under the write
// high watermark now, possibly nothing, and never blocks. A nil src fails
// with ErrInvalid.
func (c *Conn) WriteBuffer(src *actor.Buffer, wait bool) (int64, error) {
	if c.zero() {
		return 0, errZeroConn
	}
	if src == nil {
		return 0, c.opError("write", fmt.Errorf("%w: nil buffer", ErrInvalid))
	}
	return c.admit(wait, src.Len, func(room int) (int, error) { return c.wbuf.MoveFromN(src, room) })
}

// admit is the admission loop of Write and WriteBuffer: while left
// reports bytes to go, it has move (called with c.mu held) put up to room
// of them into wbuf, room being what the write high watermark leaves, and
// wakes the bufferevent to take them; when nothing fits it waits for
// room, or returns at once without wait. It returns how many bytes move
// took, and the error that stopped it: the Conn's (see writeErrorLocked)
// or move's, as an *net.OpError.
func (c *Conn) admit(wait bool, left func() int, move func(room int) (int, error)) (int64, error) {
	var n int64
	for {
		c.mu.Lock()
		if err := c.writeErrorLocked(); err != nil {
			c.mu.Unlock()
			return n, err
		}
		if left() == 0 {
			c.mu.Unlock()
			return n, nil
		}
		if room := c.writeHigh() - c.heldLocked(); room > 0 {
			k, err := move(room)
			n += int64(k)
			if err != nil {
				c.mu.Unlock()
				return n, c.opError("write", err)
			}
			poke := !c.poked && !c.armed
			c.poked = c.poked || poke
			// Everything fitted (a filter's hand-over, nearly always):
			// done, without locking again only to find nothing left.
			done := left() == 0
			c.mu.Unlock()
			if poke {
				// The bufferevent takes wbuf in its write callback, on
				// its own goroutine; the callback also refreshes what the
				// view knows of its output, which keeps admission exact.
				// While armed, the write under way runs that callback
				// anyway: a Trigger would only cost the bufferevent a
				// turn that finds its writer busy.
				c.b.Trigger(actor.Write, actor.TriggerIgnoreWatermarks)
			}
			if done {
				return n, nil
			}
			continue
		}
		c.mu.Unlock()
		if !wait {
			return n, nil
		}
		select {
		case <-c.writable:
		case <-c.done:
		case <-c.wdl.Wait():
		case <-c.b.Done():
		}
	}
}

// writeErrorLocked is why a Write cannot go on, or nil.
func (c *Conn) writeErrorLocked() error {
	switch {
	case c.closed:
		return c.opError("write", ErrClosed)
	case c.wclosed:
		return c.opError("write", fmt.Errorf("%w: write after CloseWrite", ErrClosed))
	case c.werr != nil:
		return c.opError("write", c.werr)
	case isDone(c.wdl.Wait()):
		return c.opError("write", os.ErrDeadlineExceeded)
	case isDone(c.b.Done()):
		c.werr = c.stoppedError()
		if c.werr == io.EOF {
			// b read its peer's EOF, then stopped: that ended its
			// reading, not this write, which a close cut.
			c.werr = ErrClosed
		}
		return c.opError("write", c.werr)
	}
	return nil
}

// heldLocked is what the view has accepted that the bufferevent has not
// written yet, as far as the view knows: what it holds, and the output it
// saw at the bufferevent's last write callback (which runs when that
// drains to its low watermark). It only overestimates, so writes never
// overrun the bufferevent's write high watermark.
func (c *Conn) heldLocked() int { return c.wbuf.Len() + c.inB }

// buffered is what the view and the bufferevent still hold of what the
// view accepted, for the write timeout (the actor's Buffered), never the
// write limit: what the view holds, plus the larger of the output its
// write callback last saw and the bufferevent's published pending length,
// which also counts bytes handed to its transport and not yet written but
// may trail the callback by one of the bufferevent's steps. It may
// overestimate, never underestimate; the callback reports progress
// exactly.
func (c *Conn) buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wbuf.Len() + max(c.inB, c.b.OutputLen())
}

// CloseWrite half-closes: what was written is sent, then the bufferevent
// is flushed with Finished, so the peer reads EOF (a pair's partner, a TCP
// peer, or through a stack of filters). Later writes fail with ErrClosed.
// It waits for the bufferevent to take the request, not for the bytes to
// be sent, and fails with ErrClosed after Close.
func (c *Conn) CloseWrite() error {
	if c.zero() {
		return errZeroConn
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", ErrClosed)
	}
	if c.wclosed {
		c.mu.Unlock()
		return nil
	}
	c.wclosed = true
	c.mu.Unlock()
	signal(c.writable)
	err := c.b.Do(func(s *actor.Session) {
		c.takeOutput(s)
		s.Flush(actor.Write, actor.Finished)
	})
	if err != nil {
		return c.opError("close", fmt.Errorf("%w: %w", ErrClosed, err))
	}
	return nil
}

// Close closes the view and its bufferevent. It first fails pending and
// later Reads and Writes, then writes what is still buffered and lets
// the bufferevent drain through any filters below it (see
// actor.Bufferevent.Drain), waiting at most until the write deadline, or
// DefaultLinger when none is set, before closing at once. It returns the
// result of the drain, the same to every caller.
func (c *Conn) Close() error {
	if c.zero() {
		return errZeroConn
	}
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Conn) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	close(c.done)
	if c.mode == closeFree {
		return c.free()
	}
	end := c.wdl.When()
	if end.IsZero() {
		end = time.Now().Add(DefaultLinger)
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	c.b.Do(func(s *actor.Session) { c.takeOutput(s) }) // fails only when b has stopped; Drain says so too
	err := c.b.Drain(ctx)
	c.release()
	if errors.Is(err, actor.ErrOutputLost) {
		// As a TCP connection's Close, the view's does not report
		// output that the peer's end was gone for (Drain does).
		err = nil
	}
	if err != nil {
		return c.opError("close", err)
	}
	return nil
}

// free is libevent's filter free: drop what the view holds, leave b with
// no callbacks and reading disabled, and close it when asked to.
func (c *Conn) free() error {
	c.b.SetCallbacks(actor.Callbacks{})
	if low, high, _ := c.b.Watermark(actor.Write); low == c.ourLow {
		if high > 0 {
			low = min(c.userLow, high)
		} else {
			low = c.userLow
		}
		c.b.SetWatermark(actor.Write, low, high)
	}
	c.release()
	if c.closeB {
		return c.b.Close()
	}
	c.b.Disable(actor.Read)
	return nil
}

func (c *Conn) release() {
	c.mu.Lock()
	c.rbuf.Reset()
	c.wbuf.Reset()
	c.mu.Unlock()
	c.rdl.Stop()
	c.wdl.Stop()
}

// notifyProgress is NotifyProgress of a filter's or TLS transport: the
// bufferevent above hands the view the function that wakes it.
func (c *Conn) notifyProgress(wake func()) {
	if wake == nil {
		c.wake.Store(nil)
		return
	}
	c.wake.Store(&wake)
}

// notifyReadable is NotifyReadable of a filter's transport: the filter's
// actor hands the view the function that makes it call TryReadBuffer
// (nil when it lets go). The view calls it wherever it wakes a waiting
// Read, and a goroutine of its own calls it when b stops, as the Read it
// replaces would have noticed; that goroutine has ended when
// notifyReadable(nil) returns.
func (c *Conn) notifyReadable(wake func()) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watchStop != nil {
		close(c.watchStop)
		c.watchWG.Wait()
		c.watchStop = nil
	}
	if wake == nil {
		c.rwake.Store(nil)
		return
	}
	c.rwake.Store(&wake)
	stop := make(chan struct{})
	c.watchStop = stop
	c.watchWG.Go(func() {
		select {
		case <-c.b.Done():
			wake()
		case <-stop:
		}
	})
}

// readableNow wakes a waiting Read, or the filter's actor that reads the
// view itself.
func (c *Conn) readableNow() {
	signal(c.readable)
	if wake := c.rwake.Load(); wake != nil {
		(*wake)()
	}
}

// drain is the Drain of a filter's or TLS transport: it hands what the
// view holds to b and drains b in turn (see actor.Bufferevent.Drain).
func (c *Conn) drain(ctx context.Context) error {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.b.Do(func(s *actor.Session) { c.takeOutput(s) })
	return c.b.Drain(ctx)
}

// takeOutput moves what the view holds for the output into it. It runs on
// the bufferevent's goroutine. It reports write progress: a callback the
// view did not ask for comes after one of b's writes completed (the view
// set b's write low watermark so that every write runs it), and an output
// shorter than the view last saw means b handed bytes to its transport.
// (A completion that runs first takes the view's request with it, so the
// requested callback may count as progress once more; that only restarts
// a write timeout while the filter above is writing anyway.)
func (c *Conn) takeOutput(s *actor.Session) (progressed bool) {
	c.mu.Lock()
	progressed = !c.poked || s.Output().Len() < c.inB
	if c.wbuf.Len() > 0 {
		s.Output().MoveFrom(&c.wbuf)
		c.unflushed = c.flushWrites
	}
	c.inB = s.Output().Len()
	c.armed = c.inB > 0
	c.poked = false
	c.mu.Unlock()
	return progressed
}

// LocalAddr returns the local address of the connection under the
// bufferevent, or an Addr naming the bufferevent when it has none (a
// pair, for instance).
func (c *Conn) LocalAddr() net.Addr {
	if c.zero() {
		return nil
	}
	if nc := c.b.Conn(); nc != nil {
		return nc.LocalAddr()
	}
	return bevAddr(c.b)
}

// RemoteAddr returns the remote address of the connection under the
// bufferevent, or an Addr naming its partner when it is a pair (or the
// bufferevent itself when it has neither).
func (c *Conn) RemoteAddr() net.Addr {
	if c.zero() {
		return nil
	}
	if nc := c.b.Conn(); nc != nil {
		return nc.RemoteAddr()
	}
	if p := c.b.Partner(); p != nil {
		return bevAddr(p)
	}
	return bevAddr(c.b)
}

// SetDeadline sets the read and write deadlines. It fails with ErrClosed
// after Close.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future Reads; the
// zero time means none. It fails with ErrClosed after Close.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.zero() {
		return errZeroConn
	}
	if isDone(c.done) {
		return c.opError("set", ErrClosed)
	}
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for pending and future Writes (and
// for the drain of Close); the zero time means none. It fails with
// ErrClosed after Close.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.zero() {
		return errZeroConn
	}
	if isDone(c.done) {
		return c.opError("set", ErrClosed)
	}
	c.wdl.Set(t)
	return nil
}

// The callbacks, on the bufferevent's goroutine.

func (c *Conn) onRead(s *actor.Session) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.rbuf.MoveFrom(s.Input())
	if c.rbuf.Len() >= c.readHigh() {
		// Pause: what the view holds is enough. Read resumes it.
		s.Disable(actor.Read)
		c.readOn = false
	}
	c.mu.Unlock()
	c.readableNow()
}

func (c *Conn) onWrite(s *actor.Session) {
	if c.takeOutput(s) && c.upperWantsProgress() {
		if wake := c.wake.Load(); wake != nil {
			(*wake)()
		}
	}
	c.flushOutput(s)
	signal(c.writable)
}

// flushOutput, on a public view, pushes what Writes put in b's output
// through b's output stage at once (Flush(Write, Flush)): net.Conn's
// Write has sent its bytes when it returns, and a stage that holds bytes
// back (a compressor) would otherwise keep a request from its peer until
// more came. A view that is a filter's transport does not: the filter
// above flushes as its user asks. The flush runs the write callback
// again (the view set the write low watermark so that it does); bytes a
// Write adds meanwhile are flushed by the rounds here, and past the bound
// by a callback asked for at once, so a writer that never pauses does not
// hold b's actor.
func (c *Conn) flushOutput(s *actor.Session) {
	if !c.unflushed || c.flushing {
		return
	}
	c.flushing = true
	for range 16 {
		c.unflushed = false
		s.Flush(actor.Write, actor.Flush)
		if !c.unflushed {
			break
		}
	}
	c.flushing = false
	if c.unflushed {
		c.b.Trigger(actor.Write, actor.TriggerIgnoreWatermarks)
	}
}

// upperWantsProgress reports whether the filter above needs to hear that
// b wrote: when b's write high watermark limits the filter's output stage
// (room appeared) or the filter has a write timeout (to restart it).
// Otherwise the signal would only cost the filter a turn of its actor per
// write of b.
func (c *Conn) upperWantsProgress() bool {
	f := c.upper.Load()
	if f == nil {
		return false
	}
	if _, high, _ := c.b.Watermark(actor.Write); high > 0 {
		return true
	}
	_, wto := f.Timeouts()
	return wto > 0
}

func (c *Conn) onEvent(s *actor.Session, ev actor.Event, err error) {
	if err == nil && ev&actor.Error != 0 {
		err = errors.New("pipeline: bufferevent reported an error")
	}
	var fwd func(actor.Event)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	dirs := ev & (actor.Reading | actor.Writing)
	switch {
	case ev&actor.EOF != 0:
		c.rbuf.MoveFrom(s.Input())
		if c.rerr == nil {
			c.rerr = io.EOF
		}
	case ev&actor.Error != 0:
		if dirs&actor.Reading != 0 || dirs == 0 {
			c.rbuf.MoveFrom(s.Input())
			if c.rerr == nil {
				c.rerr = err
			}
		}
		if dirs&actor.Writing != 0 || dirs == 0 {
			if c.werr == nil {
				c.werr = err
			}
		}
	case ev&actor.Timeout != 0:
		if dirs&actor.Reading != 0 {
			c.readOn = false // b disabled its reading; the next Read re-enables it
		}
		fwd = c.forwardLocked(ev)
	case ev&actor.Connected != 0 && c.forwardConnected:
		fwd = c.forwardLocked(ev)
	}
	c.mu.Unlock()
	if fwd != nil {
		fwd(ev)
	}
	c.readableNow()
	signal(c.writable)
}

// forwardLocked returns the function that passes ev on to the filter, or
// queues ev when the filter is not yet known.
func (c *Conn) forwardLocked(ev actor.Event) func(actor.Event) {
	if c.fwd == nil {
		c.fwdQ = append(c.fwdQ, ev)
	}
	return c.fwd
}

// setForward makes the view pass b's Connected and Timeout events to fwd,
// first those that came before.
func (c *Conn) setForward(fwd func(actor.Event)) {
	c.mu.Lock()
	c.fwd = fwd
	q := c.fwdQ
	c.fwdQ = nil
	c.mu.Unlock()
	for _, ev := range q {
		fwd(ev)
	}
}

// readHigh is how much unread input the view holds before it pauses b.
func (c *Conn) readHigh() int {
	if _, high, _ := c.b.Watermark(actor.Read); high > 0 {
		return high
	}
	if c.mode == closeFree {
		return filterReadHigh
	}
	return actor.DefaultChannelHighWatermark
}

// filterReadHigh is how much unread input a filter's view holds before it
// pauses an underlying that has no read high watermark: two of the
// filter's largest reads (actor.PairMaxIO), so that one can be taken
// while the next arrives.
const filterReadHigh = 2 * actor.PairMaxIO

// writeHigh is how much the view and b's output may hold: b's write high
// watermark, or, when it has none, DefaultChannelHighWatermark for a
// public Conn and filterWriteHigh for a filter's view.
func (c *Conn) writeHigh() int {
	if _, high, _ := c.b.Watermark(actor.Write); high > 0 {
		return high
	}
	if c.mode == closeFree {
		return filterWriteHigh
	}
	return actor.DefaultChannelHighWatermark
}

// filterWriteHigh bounds what a filter hands down to an underlying that
// has no write high watermark: two of the filter's largest writes
// (actor.PairMaxIO), so that one can be on its way while the next is
// handed down.
const filterWriteHigh = 2 * actor.PairMaxIO

// stoppedError is the cause once b has stopped without an event the view
// saw: io.EOF when that is why it stopped, else ErrClosed with b's cause.
func (c *Conn) stoppedError() error {
	err := c.b.Err()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err == nil || errors.Is(err, actor.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "bev", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Addr is the address of a bufferevent that has no network connection
// under it, such as one end of a pair.
type Addr struct{ name string }

// Network returns "bev".
func (a Addr) Network() string { return "bev" }

// String returns a name unique to the bufferevent while it lives.
func (a Addr) String() string { return a.name }

func bevAddr(b *actor.Bufferevent) Addr { return Addr{fmt.Sprintf("bev:%p", b)} }

// signal wakes one waiter on a buffered(1) channel without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func isDone(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
