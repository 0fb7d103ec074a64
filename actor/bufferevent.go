package actor

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Defaults. They are not libevent's fixed 16 KiB per read and per write:
// a busy stream spends nearly all its CPU in system calls, so bev reads
// and writes as much as is there at once, and the per-read and per-write
// maxima are caps, which SetMaxRead and SetMaxWrite lower (libevent's
// set_max_single_read/write). An idle connection pays nothing for them: a
// socket takes its read chunk only once data is there, and gives it back
// once written (docs/benchmarks.md, adaptive reads and writes).
const (
	// DefaultMaxRead is the most one read takes from the transport
	// (libevent's max_single_read, 16 KiB there). How much a read asks
	// for adapts to the stream below it, as Netty's adaptive allocator
	// does: from 4 KiB on a socket (512 bytes on other transports), four
	// times more after a read that filled its chunk, four times less
	// after two in a row that would have fit a quarter of it. Above
	// 64 KiB a read needs one of a few shares of a process-wide budget
	// (eight readers at a time; a socket waiting for data holds none),
	// so that many busy streams do not each read 256 KiB at a time; the
	// others read up to 64 KiB meanwhile.
	DefaultMaxRead = maxReadChunk
	// DefaultMaxWrite is the most one write hands the transport: one
	// writev on a socket (libevent's max_single_write, 16 KiB there).
	// A write takes everything queued up to it.
	DefaultMaxWrite = 256 << 10
	// DefaultChannelHighWatermark bounds the channel view when no
	// watermark is set: reading pauses while this much input waits
	// undelivered on In, and sends on Out block while this much output is
	// queued. A set read or write high watermark takes its place.
	DefaultChannelHighWatermark = 64 << 10
)

// Callbacks are the libevent-style handlers of a bufferevent. They run on
// the bufferevent's actor goroutine (with DeferCallbacks, in a turn the
// Base's dispatcher hands out) and get a *Session with the real buffers:
// they may drain input and append output directly, and call any method of
// any bufferevent. A nil field means no callback.
type Callbacks struct {
	// Read runs after new input arrived, when the input holds at least
	// the read low watermark and reading is enabled.
	Read func(s *Session)
	// Write runs after output was written, when the output has drained
	// to the write low watermark or below.
	Write func(s *Session)
	// Event reports EOF, errors, timeouts and connects; err is the cause
	// (io.EOF for EOF, ErrTimeout for timeouts, nil for Connected).
	Event func(s *Session, ev Event, err error)
}

// EventInfo is what the Events channel carries: the bits and their cause.
type EventInfo struct {
	Event Event
	Err   error
}

// DialFunc makes the transport of a connecting bufferevent. See Connect.
type DialFunc func(ctx context.Context) (Transport, error)

// Stage is a filter step between two buffers, run on the actor goroutine:
// an input stage moves bytes from what the transport delivered into the
// input, an output stage from the output into what the transport is
// given. Process moves at most limit bytes into dst (a negative limit means
// no limit) and returns StageOK when it made progress, StageNeedMore when
// it needs more input first, or StageError with a cause. Package pipeline
// builds stages; a nil Stage moves bytes unchanged.
//
// In Normal mode the actor calls a stage while its source holds bytes and
// its destination has room. A stage that can hold output back (it produced
// more than limit allowed, as a decompressor does) may also implement
//
//	Buffered() int // bytes held, ready to emit without more input
//
// and is then called again as room appears while Buffered is positive,
// even with nothing new in its source. An input stage's limit is the room
// under the read high watermark in every mode: a Flush or Finished of the
// input calls it at least once within that room and again, in that mode,
// as room appears, until it holds nothing and its source is empty.
type Stage interface {
	Process(dst, src *Buffer, limit int, mode FlushMode) (StageResult, error)
}

// StageResult is what a Stage returns: libevent's BEV_OK, BEV_NEED_MORE
// and BEV_ERROR.
type StageResult int

// The stage results.
const (
	StageOK       StageResult = 0 // BEV_OK: progress was made
	StageNeedMore StageResult = 1 // BEV_NEED_MORE: nothing more until more input
	StageError    StageResult = 2 // BEV_ERROR: the stage failed
)

type watermark struct{ low, high int }

// noWatermark is every new bufferevent's watermarks: none. A watermark is
// never changed once stored (setWatermark stores a new one), so all may
// share it.
var noWatermark = &watermark{}

// Bufferevent is a byte stream with an input and an output buffer,
// watermarks, timeouts and optional stages: libevent's bufferevent as an
// actor. One goroutine owns all of its state; a reader loop and a writer
// loop own the blocking I/O of its Transport. All three are joined by
// Close.
//
// # Reading starts disabled
//
// A new bufferevent has writing enabled and reading disabled, as
// libevent's: nothing is read until Enable(Read). Asking for the In channel
// enables reading, since a channel user plainly wants input.
//
// # Concurrency
//
// Every method is safe for concurrent use. Methods that change state
// (Write, Enable, SetWatermark, …) queue a message and return at once, so
// a callback may call them on any bufferevent without risk of deadlock.
// Getters read state published by the actor or stored by the setter, so a
// goroutine sees its own settings at once. Methods that must return data
// (TryRead, ReadBuffer, Do) wait for the actor: call them from your own
// goroutines, and use the Session given to callbacks instead. After the
// bufferevent has stopped, every method returns promptly with ErrClosed or
// the zero value.
//
// # As an io.Reader or io.Writer
//
// Bufferevent is neither: its TryRead and Write are libevent's
// non-blocking calls. For Go's blocking io.Reader and io.Writer contract
// over a bufferevent (bufio, io.Copy, fmt.Fprintf, net/http), use the
// net.Conn view [github.com/bevgo/bev/pipeline.NewConn].
//
// # Made by a constructor only
//
// A Bufferevent must be made by New, NewStaged or NewPair (or a
// constructor built on them, such as package conn's). A zero Bufferevent,
// or a nil pointer, is not usable: its methods that return an error fail
// with one wrapping ErrInvalid, the others return their zero result (Done,
// In and Events a closed channel), and none panics or blocks.
type Bufferevent struct {
	base *Base
	opts Option

	// Settings: stored by any goroutine (a setter, or the actor for a
	// Session), read by the actor, which loads them each time it needs
	// them and never caches them.
	//
	// enabled is the one setting the actor changes too: it clears a
	// direction on EOF, a read or write error and a timeout (as libevent
	// does), and stores 0 on exit. It holds the enabled directions and,
	// above them, a count of the calls that enabled each (enabledWord).
	// Every writer changes only its own bits with an atomic Or, And or
	// compare-and-swap, so a setter's Enable and the actor's clearing of
	// another direction never undo each other; when both touch the same
	// direction the later one wins, as the calls are ordered, and a
	// timeout is ordered when its timer fired, not when the actor takes it
	// (onTimeout).
	enabled atomic.Uint32
	// fired is enabled as it was when the clock timer last fired: its
	// counts of enabling calls tell onTimeout whether an Enable came after.
	fired    atomic.Uint32
	rwm, wwm atomic.Pointer[watermark]
	rto, wto atomic.Int64 // nanoseconds; 0 means none
	maxRead  atomic.Int64
	maxWrite atomic.Int64
	pri      atomic.Int32
	cbs      atomic.Pointer[Callbacks]

	// Published by the actor, for getters on any goroutine: the actor is
	// their only writer, except connState, which Connect moves from
	// connIdle to connBusy (a compare-and-swap, so that two connects
	// cannot both start) and back when it cannot post; the actor moves it
	// back to connIdle once the connect or handshake is over.
	inLen, outLen atomic.Int64
	// written counts the bytes transports took from the output (Written);
	// the sinks add to it where a write returns, on whichever goroutine
	// made it (the actor, the writer loop, a borrower of the lent sink).
	written      atomic.Int64
	curTransport atomic.Pointer[transportBox]
	connState    atomic.Int32 // connIdle, connBusy
	// dialNet: the connect in flight came from ConnectNet; dialCancel
	// is the cancel of a dial the actor runs itself (dialHere), set while
	// it runs: Free calls it.
	dialNet    atomic.Bool
	dialCancel atomic.Pointer[context.CancelFunc]

	mail      mailbox
	closing   chan struct{} // closed by Free
	closeOnce sync.Once
	done      chan struct{} // closed when the actor and its loops are gone
	closeErr  error         // written by the actor before it closes done; read after done
	// turn hands a deferred-callback turn back: the Base's dispatcher
	// posts msgTurn to hand it over and waits here, and the actor sends
	// once its callbacks have run. The actor makes it before it first
	// asks for a turn (the Base's lock orders that before the
	// dispatcher's read), so a bufferevent that never defers a callback
	// holds none.
	turn    chan struct{}
	out     chan []byte    // made by the first Out or Send (under chMu)
	send    chan sendPiece // Send's own way to the output, made with out: its bytes are counted in outLen before they are handed over
	outUsed atomic.Bool    // out and send exist: the actor selects on them

	// sinkState and lentSink are the sink a socket's actor lends to
	// writers on other goroutines while it waits with nothing to write
	// (lend.go says who moves sinkState when). lentSink is stored by the
	// actor when it starts a socket's I/O (startIO), before it can lend
	// it, and read by a borrower only once it holds the sink.
	sinkState atomic.Uint32
	lentSink  atomic.Pointer[viewSink]
	// lentErr is the first failure of a write through the lent sink:
	// stored by the borrower before it gives the sink back
	// (lentWriteFailed), read by the actor when an end of stream may
	// hide it (takeLentFailure), cleared when the transport goes.
	lentErr atomic.Pointer[error]

	chans    atomic.Uint32 // chanIn, chanEvents: set once the channel exists
	chMu     sync.Mutex    // guards following
	in       chan []byte
	events   chan EventInfo
	failC    chan struct{} // made by the first Failed or Send; closed by fail
	inClosed bool
	exited   bool
	failed   bool // the output has failed (wErr says why)

	errMu sync.Mutex // guards following
	err   error
	wErr  error // why the output can take no more: a write error, or ErrClosed
	// drainLost is the write error that failed the output while a Drain
	// waited and before its half-close was done (noteDrainLost).
	drainLost error

	pair *pairLink

	rateLimits

	a actorState // touched only by the actor goroutine
}

type transportBox struct{ t Transport }

const (
	connIdle int32 = iota
	connBusy
)

// New returns a bufferevent over t, owned by base (which may be nil), with
// writing enabled and reading disabled. t may be nil: give it one later
// with SetTransport or Connect; until then writes are buffered. New fails
// with an error wrapping ErrInvalid for unknown options or UnlockCallbacks
// without DeferCallbacks, and wrapping ErrClosed when base is closed.
func New(base *Base, t Transport, opts Option) (*Bufferevent, error) {
	return NewStaged(base, t, opts, nil, nil)
}

// NewStaged is New with an input and an output stage (either may be nil):
// the filtering bufferevent that package pipeline builds on.
func NewStaged(base *Base, t Transport, opts Option, in, out Stage) (*Bufferevent, error) {
	b, err := newBufferevent(base, t, opts, in, out)
	if err != nil {
		return nil, err
	}
	b.start()
	return b, nil
}

// newBufferevent makes a bufferevent whose actor is not started yet, so
// that a pair can be linked first.
func newBufferevent(base *Base, t Transport, opts Option, in, out Stage) (*Bufferevent, error) {
	if opts&^allOptions != 0 {
		return nil, fmt.Errorf("%w: unknown options %#x", ErrInvalid, uint32(opts&^allOptions))
	}
	if opts&UnlockCallbacks != 0 && opts&DeferCallbacks == 0 {
		return nil, fmt.Errorf("%w: UnlockCallbacks requires DeferCallbacks", ErrInvalid)
	}
	b := &Bufferevent{
		base:    base,
		opts:    opts,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	b.mail.init()
	b.enabled.Store(uint32(Write))
	b.rwm.Store(noWatermark)
	b.wwm.Store(noWatermark)
	b.maxRead.Store(DefaultMaxRead)
	b.maxWrite.Store(DefaultMaxWrite)
	b.pri.Store(int32(base.Priorities() / 2))
	b.a.init(b, in, out)
	if err := base.Register(b); err != nil {
		return nil, err
	}
	if t != nil {
		b.a.attach(t, false)
	}
	return b, nil
}

// start starts the actor goroutine; Close (through done) joins it.
func (b *Bufferevent) start() {
	if b.opts&LargeStack != 0 {
		go b.a.runGrown()
		return
	}
	go b.a.run()
}

// Base returns the Base the bufferevent belongs to (nil if none).
func (b *Bufferevent) Base() *Base {
	if b.zero() {
		return nil
	}
	return b.base
}

// Options returns the options the bufferevent was made with.
func (b *Bufferevent) Options() Option {
	if b.zero() {
		return 0
	}
	return b.opts
}

// Transport returns the current transport, or nil when there is none (not
// yet connected, or closed).
func (b *Bufferevent) Transport() Transport {
	if b.zero() {
		return nil
	}
	if tb := b.curTransport.Load(); tb != nil {
		return tb.t
	}
	return nil
}

// Conn returns the net.Conn under the bufferevent: its transport when that
// is a net.Conn, the underlying bufferevent's Conn for a filter, and nil
// otherwise (a pair, or no transport). This is libevent's getfd.
func (b *Bufferevent) Conn() net.Conn {
	switch t := b.Transport().(type) {
	case net.Conn:
		return t
	case interface{ Underlying() *Bufferevent }:
		if u := t.Underlying(); u != nil {
			return u.Conn()
		}
	}
	return nil
}

// Underlying returns the bufferevent a filter wraps, or nil when the
// transport is not another bufferevent (libevent's get_underlying).
func (b *Bufferevent) Underlying() *Bufferevent {
	if u, ok := b.Transport().(interface{ Underlying() *Bufferevent }); ok {
		return u.Underlying()
	}
	return nil
}

// SetCallbacks replaces all three callbacks (libevent's setcb). They take
// effect for the next callback the actor runs. It has no effect after the
// bufferevent has stopped.
//
// The actor runs on its own, so an event can come before the caller's
// next statement. Events that come before the first SetCallbacks (and
// with no Events channel asked for) are kept, ORed together as deferred
// events are, and delivered once the first callbacks are set (or the
// Events channel is asked for), so
// connecting first and setting callbacks after (le-proxy's order, safe in
// libevent because its callbacks wait for the loop) loses nothing. Once
// callbacks have been set, an event that finds no Event callback is
// dropped, as in libevent.
func (b *Bufferevent) SetCallbacks(cbs Callbacks) {
	if b.zero() || isClosedChan(b.done) {
		return
	}
	if b.cbs.Swap(&cbs) == nil {
		b.mail.post(message{kind: msgCallbacks})
	}
}

// Callbacks returns the callbacks set last (libevent's getcb); the zero
// value after Close.
func (b *Bufferevent) Callbacks() Callbacks {
	if b.zero() || isClosedChan(b.done) {
		// exit clears them, but a SetCallbacks whose check passed just
		// before the stop may store them after that.
		return Callbacks{}
	}
	if c := b.cbs.Load(); c != nil {
		return *c
	}
	return Callbacks{}
}

// Write copies p to the end of the output (libevent's bufferevent_write).
// It never blocks and never keeps p: the output grows as the caller
// writes, whatever the watermarks. It returns an error wrapping ErrClosed
// after the bufferevent has stopped, and, once a write to the transport
// has failed, an error wrapping that failure (errors.Is finds its cause,
// syscall.EPIPE or syscall.ECONNRESET, say), p being dropped: see Failed.
//
// On a socket (a *net.TCPConn or *net.UnixConn, on Linux) whose actor
// waits for its peer with nothing to write, no write callback, stage,
// rate limit or half-close, and nothing posted before, Write writes p at
// once on the caller's goroutine, as much as the kernel takes, and wakes
// nobody; the rest goes through the output as usual. The bytes are then
// never in the output (OutputLen does not count them), and, since no
// write callback is set, nobody hears of them: the outcome is the same as
// the actor's own write. A relay whose read callback writes to its peer
// thus pays what a goroutine-per-connection relay does.
func (b *Bufferevent) Write(p []byte) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	if err := b.writeErr(); err != nil || len(p) == 0 {
		return err
	}
	n, held := b.writeThrough(p, nil, len(p))
	if n == int64(len(p)) {
		return nil
	}
	if held {
		defer b.returnSink(false) // once the rest is posted
	}
	p = p[n:]
	if !b.mail.postCopy(p, &b.outLen) {
		return fmt.Errorf("write: %w", ErrClosed)
	}
	return nil
}

// WriteBuffer moves all of buf to the end of the output without copying
// bytes, leaving buf empty (libevent's write_buffer). It fails with an
// error wrapping ErrInvalid for a nil buf, ErrFrozen when buf's front is
// frozen, ErrClosed after the bufferevent has stopped, and the write
// failure once the output has failed, as Write (buf is then left as it
// was). As Write, on a socket whose actor waits with nothing to write it
// writes at once what the kernel takes, on the caller's goroutine, and
// drains that from buf.
func (b *Bufferevent) WriteBuffer(buf *Buffer) error {
	if buf == nil {
		return fmt.Errorf("%w: nil buffer", ErrInvalid)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	if err := b.writeErr(); err != nil {
		return err
	}
	if buf.n > 0 && !buf.frozenFront {
		n, held := b.writeThrough(nil, buf, buf.n)
		buf.drain(int(n))
		if buf.n == 0 {
			return nil
		}
		if held {
			defer b.returnSink(false) // once the rest is posted
		}
	}
	mp := carriers.Get().(*Buffer)
	if err := mp.MoveFrom(buf); err != nil {
		carriers.Put(mp)
		return err
	}
	if !b.mail.postOut(message{kind: msgWriteBuffer, buf: mp}, mp.Len(), &b.outLen) {
		buf.MoveFrom(mp)
		carriers.Put(mp)
		return fmt.Errorf("write buffer: %w", ErrClosed)
	}
	return nil
}

// TryRead removes up to len(p) bytes from the input into p and returns how
// many (libevent's bufferevent_read): 0 and a nil error when the input is
// empty, since it never waits for input (only for the actor to answer).
// That is not io.Reader's contract, which is why it is not called Read:
// for a blocking io.Reader (and io.Writer) over a bufferevent, with io.EOF
// after the peer's EOF, use pipeline.NewConn. From a callback use
// Session.Read. After Close or Free TryRead returns 0 and an error
// wrapping ErrClosed.
func (b *Bufferevent) TryRead(p []byte) (int, error) {
	var n int
	err := b.Do(func(s *Session) { n = s.Read(p) })
	return n, err
}

// ReadBuffer moves all of the input to the end of dst without copying
// (libevent's read_buffer). It waits for the actor; from a callback use
// Session.ReadBuffer. It fails with an error wrapping ErrInvalid for a nil
// dst and ErrClosed after Close or Free.
func (b *Bufferevent) ReadBuffer(dst *Buffer) error {
	if dst == nil {
		return fmt.Errorf("%w: nil buffer", ErrInvalid)
	}
	var err error
	if derr := b.Do(func(s *Session) { err = s.ReadBuffer(dst) }); derr != nil {
		return derr
	}
	return err
}

// Do runs fn on the actor goroutine with the buffers in hand and returns
// when it has returned: libevent's lock/unlock pair as an atomic section.
// fn must not call Do, TryRead, ReadBuffer, Close or Drain of this
// bufferevent, which wait for the actor that is running fn (use the
// Session; Free does not wait). Do must not be called from this
// bufferevent's own callbacks either. It returns an error wrapping
// ErrInvalid for a nil fn, ErrClosed after Close or Free or when the
// bufferevent stopped before fn ran, and, when fn panicked, the
// *PanicError (which wraps ErrPanic) that then closes the bufferevent as
// any callback's panic does.
func (b *Bufferevent) Do(fn func(s *Session)) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalid)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	done := make(chan struct{})
	d := &doFunc{fn: fn}
	if !b.mail.post(message{kind: msgFunc, fn: d.run, done: done}) {
		return fmt.Errorf("do: %w", ErrClosed)
	}
	select {
	case <-done:
	case <-b.done:
		select {
		case <-done:
		default:
			return fmt.Errorf("do: %w", ErrClosed)
		}
	}
	if d.err != nil {
		return fmt.Errorf("do: %w", d.err)
	}
	return nil
}

// Flush pushes data through the bufferevent (libevent's flush). Normal
// runs the stages as the watermarks allow; Flush makes them emit what they
// hold; Finished does that and, for Write, half-closes the transport once
// the output is written (which waits while writing is disabled), so the
// peer reads EOF (a pair's partner gets Reading|EOF; a TCP peer gets FIN).
// Flush returns at once; Drain waits. It
// fails with an error wrapping ErrInvalid for an unknown direction or mode
// and ErrClosed after Close or Free.
func (b *Bufferevent) Flush(d Dir, mode FlushMode) error {
	if err := checkFlush(d, mode); err != nil {
		return err
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	if !b.mail.post(message{kind: msgFlush, dir: d, mode: mode}) {
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	return nil
}

// checkFlush returns an error wrapping ErrInvalid for an unknown direction
// or flush mode, else nil.
func checkFlush(d Dir, mode FlushMode) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if !mode.valid() {
		return fmt.Errorf("%w: flush mode %v", ErrInvalid, mode)
	}
	return nil
}

// Trigger runs the read and/or write callback as if data had arrived or
// drained (libevent's trigger): the read callback if the input holds at
// least the read low watermark, the write callback if the output is at or
// below the write low watermark, both regardless of the watermarks with
// TriggerIgnoreWatermarks. Whether the direction is enabled is not
// checked. From another goroutine the callback runs on the actor soon;
// from a callback, Session.Trigger runs it at once unless TriggerDefer or
// DeferCallbacks is set. It fails with an error wrapping ErrInvalid for an
// unknown direction or option and ErrClosed after Close or Free.
func (b *Bufferevent) Trigger(d Dir, opts TriggerOption) error {
	if err := checkTrigger(d, opts); err != nil {
		return err
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	if !b.mail.post(message{kind: msgTrigger, dir: d, topt: opts}) {
		return fmt.Errorf("trigger: %w", ErrClosed)
	}
	return nil
}

// checkTrigger returns an error wrapping ErrInvalid for an unknown
// direction or trigger option, else nil.
func checkTrigger(d Dir, opts TriggerOption) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if opts&^(TriggerIgnoreWatermarks|TriggerDefer) != 0 {
		return fmt.Errorf("%w: trigger options %#x", ErrInvalid, uint32(opts))
	}
	return nil
}

// TriggerEvent runs the event callback with ev exactly as given (libevent's
// trigger_event), deferred under the same rule as Trigger. It fails with
// an error wrapping ErrInvalid for an unknown option and ErrClosed after
// Close or Free.
func (b *Bufferevent) TriggerEvent(ev Event, opts TriggerOption) error {
	if opts&^(TriggerIgnoreWatermarks|TriggerDefer) != 0 {
		return fmt.Errorf("%w: trigger options %#x", ErrInvalid, uint32(opts))
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	if !b.mail.post(message{kind: msgTriggerEvent, ev: ev, topt: opts}) {
		return fmt.Errorf("trigger event: %w", ErrClosed)
	}
	return nil
}
