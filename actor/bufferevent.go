package actor

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
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
	// after two in a row that would have fit a quarter of it.
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
// (Read, ReadBuffer, Do) wait for the actor: call them from your own
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

	// Settings: stored by any goroutine, read by the actor.
	enabled  atomic.Uint32
	rwm, wwm atomic.Pointer[watermark]
	rto, wto atomic.Int64 // nanoseconds; 0 means none
	maxRead  atomic.Int64
	maxWrite atomic.Int64
	pri      atomic.Int32
	cbs      atomic.Pointer[Callbacks]

	// Published by the actor.
	inLen, outLen atomic.Int64
	tbox          atomic.Pointer[transportBox]
	connState     atomic.Int32 // connIdle, connBusy

	mail      mailbox
	closing   chan struct{} // closed by Free
	closeOnce sync.Once
	done      chan struct{} // closed when the actor and its loops are gone
	closeErr  error         // set before done is closed
	// turn hands a deferred-callback turn back: the Base's dispatcher
	// posts msgTurn to hand it over and waits here, and the actor sends
	// once its callbacks have run.
	turn    chan struct{}
	out     chan []byte // made by the first Out or Send (under chMu)
	send    chan []byte // Send's own way to the output, made with out: its bytes are counted in outLen before they are handed over
	outUsed atomic.Bool // out and send exist: the actor selects on them

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
		turn:    make(chan struct{}),
	}
	b.mail.init()
	b.enabled.Store(uint32(Write))
	b.rwm.Store(&watermark{})
	b.wwm.Store(&watermark{})
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

func (b *Bufferevent) start() { go b.a.run() }

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
	if tb := b.tbox.Load(); tb != nil {
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
	if b.zero() {
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
func (b *Bufferevent) Write(p []byte) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	if err := b.writeErr(); err != nil || len(p) == 0 {
		return err
	}
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
// was).
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
	mp := new(Buffer)
	if err := mp.MoveFrom(buf); err != nil {
		return err
	}
	if !b.mail.postOut(message{kind: msgWriteBuffer, buf: mp}, mp.Len(), &b.outLen) {
		buf.MoveFrom(mp)
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
// Session.Read. After the bufferevent has stopped TryRead returns 0 and an
// error wrapping ErrClosed.
func (b *Bufferevent) TryRead(p []byte) (int, error) {
	var n int
	err := b.Do(func(s *Session) { n = s.Read(p) })
	return n, err
}

// ReadBuffer moves all of the input to the end of dst without copying
// (libevent's read_buffer). It waits for the actor; from a callback use
// Session.ReadBuffer. It fails with an error wrapping ErrInvalid for a nil
// dst and ErrClosed after the bufferevent has stopped.
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
// fn must not call Do, Read or ReadBuffer of this bufferevent (use the
// Session). Do must not be called from this bufferevent's own callbacks. It
// returns an error wrapping ErrInvalid for a nil fn, ErrClosed if the
// bufferevent stopped before fn ran, and, when fn panicked, the
// *PanicError (which wraps ErrPanic) that then closes the bufferevent as
// any callback's panic does.
func (b *Bufferevent) Do(fn func(s *Session)) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", ErrInvalid)
	}
	if b.zero() {
		return errZero
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

// Enable turns on reading and/or writing (libevent's enable). It re-arms
// the timeouts of those directions, and input that arrived while reading
// was disabled is reported then. It fails with an error wrapping
// ErrInvalid for an unknown direction and ErrClosed after the bufferevent
// has stopped.
func (b *Bufferevent) Enable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.enabled.Or(uint32(d))
	b.mail.post(message{kind: msgEnable, dir: d})
	return nil
}

// Disable turns off reading and/or writing (libevent's disable). A read
// already under way in the reader loop may still land in the input; its
// bytes, and the EOF or error it may meet, are reported when reading is
// enabled again (libevent does not read while reading is disabled, so it
// notices neither before then). Errors as Enable.
func (b *Bufferevent) Disable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.enabled.And(^uint32(d))
	b.mail.post(message{kind: msgWake})
	return nil
}

// Enabled returns the enabled directions (libevent's get_enabled): the
// user's intent, whether or not a watermark or rate limit holds the
// direction back. It is 0 after the bufferevent has stopped.
func (b *Bufferevent) Enabled() Dir {
	if b.zero() {
		return 0
	}
	return Dir(b.enabled.Load())
}

// SetWatermark sets the low and high watermarks of each direction in d
// (libevent's setwatermark). Read: the read callback waits for low bytes,
// and reading pauses while the input holds high bytes (0: no limit).
// Write: the write callback runs when the output drains to low, and high
// is where the Out channel, Send and filters writing into this bufferevent
// stop (0: DefaultChannelHighWatermark for the channel, none for filters).
// It fails with an error wrapping ErrInvalid for negative marks, a high
// mark below the low mark, or an unknown direction.
func (b *Bufferevent) SetWatermark(d Dir, low, high int) error {
	if err := b.setWatermark(d, low, high); err != nil {
		return err
	}
	b.mail.post(message{kind: msgWake})
	return nil
}

func (b *Bufferevent) setWatermark(d Dir, low, high int) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if low < 0 || high < 0 {
		return fmt.Errorf("%w: negative watermark (%d, %d)", ErrInvalid, low, high)
	}
	if high > 0 && low > high {
		return fmt.Errorf("%w: low watermark %d above high %d", ErrInvalid, low, high)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	wm := &watermark{low, high}
	if d&Read != 0 {
		b.rwm.Store(wm)
	}
	if d&Write != 0 {
		b.wwm.Store(wm)
	}
	return nil
}

// Watermark returns the low and high watermarks of one direction
// (libevent's getwatermark). It fails with an error wrapping ErrInvalid
// unless d is exactly Read or exactly Write.
func (b *Bufferevent) Watermark(d Dir) (low, high int, err error) {
	if b.zero() {
		return 0, 0, errZero
	}
	switch d {
	case Read:
		wm := b.rwm.Load()
		return wm.low, wm.high, nil
	case Write:
		wm := b.wwm.Load()
		return wm.low, wm.high, nil
	}
	return 0, 0, fmt.Errorf("%w: watermark direction must be Read or Write, not %v", ErrInvalid, d)
}

// SetTimeouts sets the read and write timeouts (libevent's set_timeouts);
// zero clears one. A timeout runs only while its direction is wanted: the
// read timeout while reading is enabled and not held back by the high
// watermark or a rate limit, the write timeout while writing is enabled
// and output is waiting. Any progress restarts it; when it expires the
// direction is disabled and the event callback gets Timeout|Reading or
// Timeout|Writing, once. Setting them re-arms both. It fails with an
// error wrapping ErrInvalid for a negative duration.
func (b *Bufferevent) SetTimeouts(read, write time.Duration) error {
	if err := b.setTimeouts(read, write); err != nil {
		return err
	}
	b.mail.post(message{kind: msgTimeouts})
	return nil
}

func (b *Bufferevent) setTimeouts(read, write time.Duration) error {
	if read < 0 || write < 0 {
		return fmt.Errorf("%w: negative timeout", ErrInvalid)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.rto.Store(int64(read))
	b.wto.Store(int64(write))
	return nil
}

// Timeouts returns the read and write timeouts (0: none).
func (b *Bufferevent) Timeouts() (read, write time.Duration) {
	if b.zero() {
		return 0, 0
	}
	return time.Duration(b.rto.Load()), time.Duration(b.wto.Load())
}

// SetMaxRead sets the most one read takes from the transport (libevent's
// set_max_single_read); 0 restores DefaultMaxRead. It fails with an error
// wrapping ErrInvalid for a negative n.
func (b *Bufferevent) SetMaxRead(n int) error {
	if b.zero() {
		return errZero
	}
	return setMax(&b.maxRead, n, DefaultMaxRead)
}

// SetMaxWrite sets the most one write hands the transport (libevent's
// set_max_single_write); 0 restores DefaultMaxWrite. It fails with an
// error wrapping ErrInvalid for a negative n.
//
// A socket whose send buffer was made much smaller than DefaultMaxWrite
// (SetWriteBuffer of a few KiB) wants writes of about that size: on
// Linux, TCP crawls when one write is many times its send buffer (4 MiB
// in 256 KiB writes through an 8 KiB buffer takes about 30 s over
// loopback, with plain Go's net.Conn as well, against 0.1 s in 16 KiB
// writes).
func (b *Bufferevent) SetMaxWrite(n int) error {
	if b.zero() {
		return errZero
	}
	return setMax(&b.maxWrite, n, DefaultMaxWrite)
}

func setMax(v *atomic.Int64, n, def int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative maximum %d", ErrInvalid, n)
	}
	if n == 0 {
		n = def
	}
	v.Store(int64(n))
	return nil
}

// MaxRead returns the per-read maximum (libevent's get_max_single_read).
func (b *Bufferevent) MaxRead() int {
	if b.zero() {
		return 0
	}
	return int(b.maxRead.Load())
}

// MaxWrite returns the per-write maximum (libevent's get_max_single_write).
func (b *Bufferevent) MaxWrite() int {
	if b.zero() {
		return 0
	}
	return int(b.maxWrite.Load())
}

// SetPriority sets the priority of the bufferevent's deferred callbacks on
// its Base's dispatcher, 0 being the highest (libevent's priority_set). It
// fails with an error wrapping ErrInvalid outside [0, Base.Priorities()).
func (b *Bufferevent) SetPriority(p int) error {
	if b.zero() {
		return errZero
	}
	if p < 0 || p >= b.base.Priorities() {
		return fmt.Errorf("%w: priority %d outside [0, %d)", ErrInvalid, p, b.base.Priorities())
	}
	b.pri.Store(int32(p))
	return nil
}

// Priority returns the priority of the deferred callbacks (libevent's
// get_priority); by default Base.Priorities()/2.
func (b *Bufferevent) Priority() int {
	if b.zero() {
		return 0
	}
	return int(b.pri.Load())
}

// InputLen returns the number of bytes in the input, as last published by
// the actor.
func (b *Bufferevent) InputLen() int {
	if b.zero() {
		return 0
	}
	return int(b.inLen.Load())
}

// OutputLen returns the number of bytes in the output not yet written to
// the transport (libevent's evbuffer_get_length on the output). Bytes a
// Write, WriteBuffer or Send from any goroutine has handed over count from
// before that call returns, even while they wait for the actor to take
// them, so a sender sees at once what it queued; what the actor has
// written since it last published counts until it publishes again, which
// it does at the end of each of its turns and before each callback and Do
// function it runs: there, OutputLen is exact, bytes handed to the
// transport but not yet written included (Session.Output().Len() leaves
// those out). It is 0 once the bufferevent has stopped.
func (b *Bufferevent) OutputLen() int {
	if b.zero() {
		return 0
	}
	return int(b.outLen.Load())
}

// Flush pushes data through the bufferevent (libevent's flush). Normal
// runs the stages as the watermarks allow; Flush makes them emit what they
// hold; Finished does that and, for Write, half-closes the transport once
// the output is written, so the peer reads EOF (a pair's partner gets
// Reading|EOF; a TCP peer gets FIN). Flush returns at once; Drain waits. It
// fails with an error wrapping ErrInvalid for an unknown direction or mode
// and ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) Flush(d Dir, mode FlushMode) error {
	if err := checkFlush(d, mode); err != nil {
		return err
	}
	if b.zero() {
		return errZero
	}
	if !b.mail.post(message{kind: msgFlush, dir: d, mode: mode}) {
		return fmt.Errorf("flush: %w", ErrClosed)
	}
	return nil
}

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
// unknown direction or option.
func (b *Bufferevent) Trigger(d Dir, opts TriggerOption) error {
	if err := checkTrigger(d, opts); err != nil {
		return err
	}
	if b.zero() {
		return errZero
	}
	if !b.mail.post(message{kind: msgTrigger, dir: d, topt: opts}) {
		return fmt.Errorf("trigger: %w", ErrClosed)
	}
	return nil
}

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
// the bufferevent has stopped.
func (b *Bufferevent) TriggerEvent(ev Event, opts TriggerOption) error {
	if opts&^(TriggerIgnoreWatermarks|TriggerDefer) != 0 {
		return fmt.Errorf("%w: trigger options %#x", ErrInvalid, uint32(opts))
	}
	if b.zero() {
		return errZero
	}
	if !b.mail.post(message{kind: msgTriggerEvent, ev: ev, topt: opts}) {
		return fmt.Errorf("trigger event: %w", ErrClosed)
	}
	return nil
}

// Connect makes the transport with dial, run on a goroutine the
// bufferevent owns, and then reports exactly one event: Connected, or
// Error with dial's error (and no data callbacks). Writes made before the
// connect completes are sent after it. Closing the bufferevent or ending
// ctx cancels dial's context. Connect fails at once with an error wrapping
// ErrInvalid for a nil dial, ErrBusy while another connect is in flight,
// and ErrClosed after the bufferevent has stopped; a transport already in
// place is replaced (closed) when the new one arrives. The event may come
// at once: see SetCallbacks for events that come before callbacks are set.
func (b *Bufferevent) Connect(ctx context.Context, dial DialFunc) error {
	if dial == nil {
		return fmt.Errorf("%w: nil dial function", ErrInvalid)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	if !b.connState.CompareAndSwap(connIdle, connBusy) {
		return fmt.Errorf("connect: %w", ErrBusy)
	}
	if !b.mail.post(message{kind: msgConnect, tr: &transportMsg{ctx: ctx, dial: dial}}) {
		b.connState.Store(connIdle)
		return fmt.Errorf("connect: %w", ErrClosed)
	}
	return nil
}

// SetTransport gives the bufferevent a new transport (libevent's setfd).
// The loops of the old one are stopped; the old transport is not closed
// when it has deadlines to stop its loops with (nor is it closed by a
// later Close). nil detaches the transport. It fails with ErrBusy while a
// connect is in flight and ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) SetTransport(t Transport) error { return b.setTransport(t, false) }

// ReplaceTransport is SetTransport that closes the old transport first
// (libevent's replacefd).
func (b *Bufferevent) ReplaceTransport(t Transport) error { return b.setTransport(t, true) }

func (b *Bufferevent) setTransport(t Transport, replace bool) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	if b.connState.Load() == connBusy {
		return fmt.Errorf("set transport: %w", ErrBusy)
	}
	if !b.mail.post(message{kind: msgSetTransport, tr: &transportMsg{t: t, replace: replace}}) {
		return fmt.Errorf("set transport: %w", ErrClosed)
	}
	return nil
}

// Free stops the bufferevent without waiting (libevent's free): no
// callback runs after the actor notices, pending output is dropped, and
// the transport is closed with CloseOnFree. Free never blocks, so it is
// safe anywhere, callbacks included; Close, Done or the Base's Close wait
// for the goroutines to end.
func (b *Bufferevent) Free() {
	if b.zero() {
		return
	}
	b.closeOnce.Do(func() {
		close(b.closing)
		b.mail.notify()
	})
}

// Close is Free followed by waiting until the actor and both loops have
// exited. It returns the error of closing the transport (nil when it was
// not closed), the same to every caller, however many and from whatever
// goroutine. It must not be called from this bufferevent's own callbacks
// (use Session.Close), nor from a callback of a bufferevent that this
// one's callbacks might be waiting for; Free is safe there.
func (b *Bufferevent) Close() error {
	if b.zero() {
		return errZero
	}
	b.Free()
	<-b.done
	return b.closeErr
}

// Drain closes gracefully: it flushes every stage with Finished, writes
// all output, half-closes the transport, lets a transport that is itself a
// bufferevent drain in turn, and then closes. On a network connection
// (a net.Conn transport) it then waits up to 2 s for the peer's EOF,
// reading and dropping what the peer still sends, before it closes:
// closing a TCP connection with unread input sends a reset, which would
// destroy output the peer has not read yet. ctx bounds the whole of it,
// that wait included: give it a deadline to wait less (Drain then closes
// at once when ctx ends). It returns Close's result, or, when ctx ends
// first, closes at once and returns an error wrapping ctx's cause.
func (b *Bufferevent) Drain(ctx context.Context) error {
	if b.zero() {
		return errZero
	}
	if ctx == nil {
		ctx = context.Background()
	}
	drained := make(chan struct{})
	if b.mail.post(message{kind: msgDrain, done: drained}) {
		select {
		case <-drained:
		case <-b.done:
		case <-ctx.Done():
			b.Close()
			return fmt.Errorf("drain: %w", context.Cause(ctx))
		}
	}
	if d, ok := b.Transport().(interface{ Drain(context.Context) error }); ok && b.opts&CloseOnFree != 0 {
		if err := d.Drain(ctx); err != nil {
			b.Close()
			return fmt.Errorf("drain: %w", err)
		}
	}
	return b.Close()
}

// Done returns a channel closed once the bufferevent has stopped and its
// goroutines have exited.
func (b *Bufferevent) Done() <-chan struct{} {
	if b.zero() {
		return closedChan
	}
	return b.done
}

// Err returns why the bufferevent's stream ended: nil while it runs,
// io.EOF after the peer's EOF, the transport's error after a read or write
// error, a *PanicError after a callback panicked, and an error wrapping
// ErrClosed after Close if nothing came first. The first cause wins, but
// for a panic after EOF (in the callback handling it, say): the
// *PanicError then replaces io.EOF.
func (b *Bufferevent) Err() error {
	if b.zero() {
		return errZero
	}
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.err
}

// setFailure records err as the cause even over a clean EOF: a failure
// that comes after the peer's EOF (a panic in the callback handling it)
// is what the user must see.
func (b *Bufferevent) setFailure(err error) {
	b.errMu.Lock()
	if b.err == nil || b.err == io.EOF {
		b.err = err
	}
	b.errMu.Unlock()
}

func (b *Bufferevent) setErr(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
}

// closedErr returns the error of a method called after the bufferevent
// stopped, or on one not made by New: nil while it runs.
func (b *Bufferevent) closedErr() error {
	if b.zero() {
		return errZero
	}
	if isClosedChan(b.closing) {
		return fmt.Errorf("bufferevent: %w", ErrClosed)
	}
	return nil
}

// zero reports whether b was not made by a constructor: a zero value or a
// nil pointer. Every method checks it first, so that such a value fails
// with errZero (or gives its zero result) instead of panicking or
// blocking.
func (b *Bufferevent) zero() bool { return b == nil || b.done == nil }

// closedChan is a closed channel: what Done, In and Events return for a
// bufferevent not made by a constructor, so that a wait on them ends.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// writeErr returns the error of a write once the output has failed (see
// Failed): nil while it works.
func (b *Bufferevent) writeErr() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if b.wErr == nil {
		return nil
	}
	return fmt.Errorf("write: %w", b.wErr)
}
