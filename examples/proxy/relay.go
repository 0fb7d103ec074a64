package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/netwrap"
)

// le-proxy's backpressure marks: once a side's output holds maxOutput
// bytes, the other side stops reading until that output has drained to
// lowOutput.
const (
	maxOutput = 512 << 10
	lowOutput = 256 << 10
)

// lingerTimeout bounds how long a side may take to end its stream after
// the other side failed. Until then its input is read and dropped, so
// that closing it does not reset the connection, which would throw away
// the bytes we wrote to it last.
const lingerTimeout = 2 * time.Second

// side is one end of a relay, the client or the target. Its counters and
// flags are written from both sides' actor goroutines and read by
// whichever of them ends the relay, so they are atomic.
type side struct {
	name string
	b    *actor.Bufferevent
	peer *side

	moved    atomic.Int64 // bytes read here and handed to the peer
	dropped  atomic.Int64 // bytes meant for this side that were thrown away, not queued
	cutOut   atomic.Int64 // the output left when this side was cut (stands in for unwritten with records)
	lastRead atomic.Int64 // time of the last read, in Unix nanoseconds
	choked   atomic.Bool  // reading is off until the peer's output drains; set on this side's goroutine, cleared on the peer's
	ended    atomic.Bool  // EOF or error: nothing more will be read here
	sawEOF   atomic.Bool  // the peer's EOF was read here (ended may also be set by a toxic, with input still coming)
	failed   atomic.Bool  // error: nothing more can be written here either
	reset    atomic.Bool  // a toxic reset the connection: this side ends with an RST, once it has a socket (resetTarget)
	staged   bool         // stages (toxics) may hold bytes beyond OutputLen; set before the side starts
	records  bool         // its bufferevent's transport takes TLS records, not the relayed bytes (-tls-filter): see unwritten
	closed   error        // the cause logged when this side ends the connection with its EOF
}

// The causes logged for an EOF, made once rather than per connection.
var (
	errClientClosed = errors.New("client closed")
	errTargetClosed = errors.New("target closed")
)

// closesWhole reports whether closing x says all that draining it would:
// x read its peer's EOF, and is a plain TCP socket with no stages. Its
// receive queue is then empty, so close sends a FIN after whatever the
// kernel still holds of x's output, as a half-close would, and a
// half-close (a shutdown call) just before the close is wasted. A TLS
// side is never one: its end is a close_notify, not just a FIN.
func (x *side) closesWhole() bool {
	if !x.sawEOF.Load() || x.failed.Load() || x.staged {
		return false
	}
	_, ok := x.b.Transport().(*net.TCPConn)
	return ok
}

// relay joins one accepted connection to its target: le-proxy's pair of
// bufferevents, each one's read callback moving its input into the
// other's output. It has no goroutine of its own: each side's callbacks
// look, after every change of state, whether the relay may end (poke),
// as le-proxy's eventcb does. Once both streams have ended, or one side
// failed and the other has lingered long enough, or the relay is aborted,
// both sides are drained or closed and the connection is logged: in the
// callback itself when that cannot block (both sides closed whole with
// nothing left to write: the common end of a connection), else on a
// goroutine started for it (end).
type relay struct {
	p     *proxy
	id    uint64
	start time.Time

	client, target side

	remote      net.Addr    // the client's address; set before the client's callbacks run, formatted only when logged
	handshaking func() bool // reports whether the client's TLS handshake is still going on; nil for a plain client
	connFail    atomic.Bool // the target could not be reached

	// ctx ends on abort (idle, stalled peer) or forced shutdown (the
	// proxy's kill aborts each open relay): it cuts a side being drained
	// (an abort closes the target, which cancels its connect). It is no
	// child of a context the proxy shares, whose lock every connection
	// would take twice.
	ctx    context.Context
	cancel context.CancelCauseFunc

	endMu     sync.Mutex    // guards following
	ending    bool          // the relay's end has been claimed (end)
	linger    *time.Timer   // the linger of a side after its peer failed; nil until then
	lingerOut chan struct{} // closed when the linger's func, once started, has returned

	connectStart  time.Time
	connectCancel context.CancelFunc // set before the connect starts; guards nothing else

	causeMu sync.Mutex // guards following
	cause   error      // the first reason the connection began to end

	// pauseMu orders each side's pause and resume (choked) with the
	// installing and removing of its peer's write callback, which exists
	// only while the side is paused, as in le-proxy.
	pauseMu sync.Mutex
}

func newRelay(p *proxy, id uint64) *relay {
	r := &relay{
		p:             p,
		id:            id,
		start:         time.Now(),
		connectCancel: func() {},
	}
	r.ctx, r.cancel = context.WithCancelCause(context.Background())
	r.client.name, r.target.name = "client", "target"
	r.client.closed, r.target.closed = errClientClosed, errTargetClosed
	r.client.peer, r.target.peer = &r.target, &r.client
	return r
}

// track counts the relay in the proxy's WaitGroup until it has ended
// (finish). It is called once the relay is registered (proxy.add).
func (r *relay) track() {
	r.p.wg.Add(1)
}

// starter is what the relay calls to start a side: *conn.Socket's
// SetCallbacks and Enable also start a TLS handshake, which the embedded
// *actor.Bufferevent's do not.
type starter interface {
	SetCallbacks(actor.Callbacks)
	Enable(actor.Dir) error
}

// setup gives x its backpressure marks and, unless it is a target yet
// to connect, its idle timeouts. A target gets them once connected
// (onEvent): its connect is bounded by -connect-timeout, and a socket
// with no timeouts dials on its own goroutine (see actor.Connect).
func (r *relay) setup(x *side, connecting bool) {
	x.lastRead.Store(r.start.UnixNano())
	// The low mark makes the write callback run whenever this side's
	// output has drained to lowOutput, which is when the other side may
	// read again.
	x.b.SetWatermark(actor.Write, lowOutput, maxOutput)
	if d := r.p.cfg.idleTimeout; d > 0 && !connecting {
		x.b.SetTimeouts(d, d)
	}
}

// startSide sets x's callbacks and starts reading and writing it.
func (r *relay) startSide(x *side, st starter) {
	st.SetCallbacks(r.callbacks(x, false))
	st.Enable(actor.Read | actor.Write)
}

// begin sets both sides up and starts relaying (the relay tests use it
// with two ready sides). Reading starts at once on both: bytes for a
// target still connecting wait in its output, and the backpressure below
// holds the client back if that grows. The client's callbacks are set
// first, so that the write callbacks the target's reads trigger on it are
// heard.
func (r *relay) begin(client, target starter) {
	r.setup(&r.client, false)
	r.setup(&r.target, false)
	r.startSide(&r.client, client)
	r.startSide(&r.target, target)
}

// dialTarget makes the target side and starts connecting it; before
// the target's callbacks are set (which starts its reads, whose write
// callbacks on the client must be heard), it calls ready, which starts
// the client when it has not started yet. The target's callbacks are set
// before the connect starts: on loopback a connect can complete at once,
// and an event that comes while a bufferevent has no callbacks is not
// heard. It runs on the listener's goroutine before the client starts,
// or on the client's goroutine once its TLS handshake is done, so that
// the client's callbacks always see the target.
func (r *relay) dialTarget(ready func()) error {
	target, connect, err := r.p.dial(r)
	if err != nil {
		return err
	}
	r.setup(&r.target, true)
	ready()
	r.startSide(&r.target, target)
	return connect()
}

// callbacks returns x's callbacks: with write, the write callback that
// resumes x's peer (onWrite), which x has only while its peer is paused,
// as le-proxy's drained_writecb. Without a write callback, x's actor, when
// it waits with nothing to write, lets its peer's read callback write
// x's socket at once (see actor.Bufferevent.Write): a relayed read then
// costs no wake-up of x's goroutine.
func (r *relay) callbacks(x *side, write bool) actor.Callbacks {
	cbs := actor.Callbacks{
		Read:  func(s *actor.Session) { r.onRead(x, s) },
		Event: func(s *actor.Session, ev actor.Event, err error) { r.onEvent(x, s, ev, err) },
	}
	if write {
		cbs.Write = func(s *actor.Session) { r.onWrite(x, s) }
	}
	return cbs
}

// onRead moves everything x has read into its peer's output without
// copying and, as le-proxy's readcb does, looks at the peer's output
// right away: once it holds maxOutput bytes, x stops reading. It runs on
// x's actor goroutine. OutputLen counts the moved bytes before
// WriteBuffer returns, though y's actor has yet to take them, so x pauses
// itself within one read of the mark, however far behind y is.
func (r *relay) onRead(x *side, s *actor.Session) {
	in := s.Input()
	n := in.Len()
	if n == 0 {
		return
	}
	x.lastRead.Store(time.Now().UnixNano())
	y := x.peer
	// Counted before the write: through a lent sink (see actor's
	// Bufferevent.Write) the bytes may reach y's peer, who may then read
	// the stats, before WriteBuffer returns.
	x.moved.Add(int64(n))
	r.p.stats.moved(x == &r.client, n)
	if y.failed.Load() || y.b.WriteBuffer(in) != nil {
		// Nowhere to deliver: read to the end and drop it (see
		// lingerTimeout). y is cut at the end, so that the loss shows.
		x.moved.Add(-int64(n))
		r.p.stats.moved(x == &r.client, -n)
		y.dropped.Add(int64(n))
		in.Drain(in.Len())
		return
	}
	held := y.b.OutputLen()
	r.p.stats.held(held)
	if held < maxOutput {
		return
	}
	// Pause, give y a write callback, then run it: it resumes x on y's
	// goroutine once y's output has drained to lowOutput, now (the
	// trigger: y may have drained already) or when it does. pauseMu makes
	// the pause and the write callback one step, and the resume and its
	// removal another, so that a resume cannot remove the callback a
	// later pause installed. The Disable comes before the resume's
	// Enable, so the Enable wins; it is repeated when already paused (a
	// read already under way when the first one came): it costs nothing.
	s.Disable(actor.Read)
	r.pauseMu.Lock()
	paused := !x.choked.Swap(true)
	if paused {
		y.b.SetCallbacks(r.callbacks(y, true))
	}
	r.pauseMu.Unlock()
	if paused {
		r.p.stats.pauses.Add(1)
		if r.p.onPause != nil {
			r.p.onPause()
		}
	}
	y.b.Trigger(actor.Write, actor.TriggerIgnoreWatermarks)
}

// onWrite runs on y's actor goroutine while x is paused, whenever y's
// output has drained to lowOutput or below (the low write watermark) and
// when x paused itself (x's trigger): le-proxy's drained_writecb. If y
// holds no more than lowOutput, x reads again and y's write callback goes
// until the next pause. What y holds is OutputLen, exact in y's own
// callback: Output().Len() leaves out what was handed to the transport
// and is not written yet (a pair hands over whole reads, a stage holds
// what it encoded), and resuming x on it would let each pause and resume
// add a read. x also resumes once the output is empty: the write callback
// comes as the output drains, so a last callback with OutputLen above
// lowOutput (an output stage still holding some) would otherwise leave x
// paused for good; what is held beyond the output then is at most a
// stage's budget and a write, well below maxOutput.
func (r *relay) onWrite(y *side, s *actor.Session) {
	x := y.peer
	if x.b == nil {
		return // the client's TLS handshake is not done: no target yet
	}
	if y.b.OutputLen() > lowOutput && s.Output().Len() > 0 {
		return
	}
	r.pauseMu.Lock()
	if x.choked.Swap(false) {
		x.b.Enable(actor.Read)
		y.b.SetCallbacks(r.callbacks(y, false))
	}
	r.pauseMu.Unlock()
}

func (r *relay) onEvent(x *side, s *actor.Session, ev actor.Event, err error) {
	switch {
	case ev&actor.Connected != 0:
		if x == &r.client {
			r.onHandshake(s)
			return
		}
		r.connectCancel()
		if x.reset.Load() {
			r.resetConnected(x, s)
			return
		}
		if d := r.p.cfg.idleTimeout; d > 0 {
			s.SetTimeouts(d, d)
		}
		if r.logs(slog.LevelDebug) {
			r.logAt(slog.LevelDebug, "target connected", slog.String("target", r.p.targetAddr),
				slog.Duration("after", time.Since(r.connectStart).Round(time.Microsecond)))
		}
	case ev&actor.Timeout != 0:
		r.onTimeout(x, s, ev)
	case ev&(actor.EOF|actor.Error) != 0:
		r.onEnd(x, s, ev, err)
	}
}

// onEnd handles x's EOF or error (le-proxy's eventcb): whatever x read
// goes to the peer, and the peer is half-closed once its output is
// written, so its own peer reads EOF after the last byte. After an EOF the
// other direction goes on until it ends too (a half-closed connection
// still receives); after an error x can take nothing more, so the peer's
// input is dropped from then on.
func (r *relay) onEnd(x *side, s *actor.Session, ev actor.Event, err error) {
	y := x.peer
	if y.b == nil {
		// The client's TLS handshake failed: no target was dialed.
		r.setCause(r.describe(x, ev, err))
		x.failed.Store(true)
		x.ended.Store(true)
		y.ended.Store(true)
		r.poke()
		return
	}
	if in := s.Input(); in.Len() > 0 {
		n := in.Len()
		if !y.failed.Load() && y.b.WriteBuffer(in) == nil {
			x.moved.Add(int64(n))
			r.p.stats.moved(x == &r.client, n)
			r.p.stats.held(y.b.OutputLen())
		} else {
			y.dropped.Add(int64(n))
			in.Drain(n)
		}
	}
	if ev&actor.Error != 0 {
		x.failed.Store(true)
		s.Disable(actor.Read)
		r.setCause(r.describe(x, ev, err))
		if x == &r.target && ev&(actor.Reading|actor.Writing) == 0 {
			r.connFail.Store(true)
			r.p.stats.failed.Add(1) // the connect failed
		}
		// y may be waiting for x's output to drain, which it never will.
		r.pauseMu.Lock()
		if y.choked.Swap(false) {
			y.b.Enable(actor.Read)
		}
		r.pauseMu.Unlock()
	} else {
		r.setCause(x.closed)
		x.sawEOF.Store(true)
	}
	x.ended.Store(true)
	if y.dropped.Load() == 0 && !y.reset.Load() && !y.closesWhole() {
		// Half-closing says that x's stream ended whole (a TLS y sends
		// close_notify); with bytes of it dropped, y is cut instead, by
		// the relay's end, and a y a toxic reset gets no FIN before its
		// RST (resetTarget). A y whose own stream has ended too is closed
		// by the end right away, which says the same (closesWhole).
		y.b.Flush(actor.Write, actor.Finished)
	}
	r.poke()
}

// onHandshake runs on the client's goroutine when its TLS handshake is
// done: only now is the target dialed, so that a client that never
// finishes its handshake costs no upstream connection.
func (r *relay) onHandshake(s *actor.Session) {
	if r.remote == nil {
		if c := s.Bufferevent().Conn(); c != nil {
			r.remote = c.RemoteAddr()
		}
	}
	if r.target.b != nil || r.ctx.Err() != nil {
		return
	}
	if err := r.dialTarget(func() {}); err != nil { // cannot happen with a checked config
		r.connFail.Store(true)
		r.p.stats.failed.Add(1)
		r.abort(err)
	}
}

// onTimeout is the idle timeout. Each side's read timeout runs only while
// that side reads nothing, so a long download trips the client's; it is
// idle only if the target has been quiet as long. A write timeout means
// the peer has taken nothing for that long.
func (r *relay) onTimeout(x *side, s *actor.Session, ev actor.Event) {
	idle := r.p.cfg.idleTimeout
	if x == &r.client && r.handshaking != nil && r.handshaking() {
		// Before its handshake a TLS client is owed nothing: it is the
		// one that stalls.
		r.abort(fmt.Errorf("client TLS handshake: not done after %v", idle))
		return
	}
	last := time.Unix(0, max(r.client.lastRead.Load(), r.target.lastRead.Load()))
	if ev&actor.Reading != 0 {
		if x.choked.Load() {
			return // paused by backpressure: the peer's write timeout watches this
		}
		// Not idle while traffic came within idle, nor while the peer
		// waits for x to take its output: x's write timeout says whether
		// x stalls (counting the peer's last read as the last traffic
		// would call a client that stopped reading idle, whichever
		// timeout fired first).
		if time.Since(last) < idle || x.peer.choked.Load() {
			s.Enable(actor.Read) // re-arms the timeout
			return
		}
		r.abort(fmt.Errorf("idle for %v", idle))
		return
	}
	r.abort(fmt.Errorf("%s took no bytes for %v", x.name, idle))
}

// describe turns an error event into the cause to log.
func (r *relay) describe(x *side, ev actor.Event, err error) error {
	switch {
	case x == &r.target && ev&(actor.Reading|actor.Writing) == 0:
		// The dialer's own deadline (from ctx's) may fire before ctx
		// ends: its error is then os.ErrDeadlineExceeded, not ctx's.
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("connect to %s: timed out after %v", r.p.targetAddr, r.p.cfg.connectTimeout)
		}
		return fmt.Errorf("connect to %s: %w", r.p.targetAddr, err)
	case x == &r.client && ev&(actor.Reading|actor.Writing) == 0:
		return fmt.Errorf("client TLS handshake: %w", err)
	}
	return fmt.Errorf("%s: %w", x.name, err)
}

func (r *relay) setCause(err error) {
	r.causeMu.Lock()
	if r.cause == nil {
		r.cause = err
	}
	r.causeMu.Unlock()
}

// abort ends the relay at once with err as its cause: both sides are
// closed (cut if they lose bytes) on a goroutine started for it, or, when
// the relay is already ending, a side being drained is cut. It never
// blocks.
func (r *relay) abort(err error) {
	r.setCause(err)
	r.cancel(err)
	if r.claim() {
		go r.settle(byAbort)
	}
}

// poke looks whether the relay may end, after a change of state of one of
// its sides: when both streams have ended, or when a side failed and
// never sent the other a byte (a connect that failed, say: a reset can
// lose nothing). When a side failed after relaying, the other lingers
// (lingerTimeout) before the relay ends. It runs on a side's goroutine,
// callbacks included, and never blocks.
func (r *relay) poke() {
	c, t := &r.client, &r.target
	if t.reset.Load() && !t.ended.Load() {
		return // a reset waits for the target's socket: its connect's outcome pokes again (resetTarget)
	}
	if !c.ended.Load() || !t.ended.Load() {
		cf, tf := c.failed.Load(), t.failed.Load()
		if !cf && !tf {
			return
		}
		if !(cf && c.moved.Load() == 0 || tf && t.moved.Load() == 0) {
			r.startLinger()
			return
		}
	}
	r.end(byCallback)
}

// startLinger starts the linger that ends the relay after lingerTimeout,
// once; not after the relay's end was claimed.
func (r *relay) startLinger() {
	r.endMu.Lock()
	defer r.endMu.Unlock()
	if r.ending || r.linger != nil {
		return
	}
	r.lingerOut = make(chan struct{})
	r.linger = time.AfterFunc(lingerTimeout, func() {
		defer close(r.lingerOut)
		r.end(byLinger)
	})
}

// claim reports whether the caller is the one to end the relay: the
// first to ask.
func (r *relay) claim() bool {
	r.endMu.Lock()
	defer r.endMu.Unlock()
	if r.ending {
		return false
	}
	r.ending = true
	return true
}

// ender says who ends a relay: a side's callback (poke), which must not
// block, an abort, or the linger, which runs on a goroutine of its own
// and may block.
type ender int

const (
	byCallback ender = iota
	byAbort
	byLinger
)

// end ends the relay, once: drains and closes both sides (at once after
// an abort or a forced shutdown, whose cause is then logged) and logs the
// connection (finish). From a callback the sides are closed right there
// only when that does not wait: both are closed whole with nothing left
// to write, which drain would close at once too. Otherwise a goroutine
// does it, counted in the proxy's WaitGroup until finish.
func (r *relay) end(by ender) {
	if !r.claim() {
		return
	}
	switch {
	case by != byCallback:
		r.settle(by)
	case context.Cause(r.ctx) == nil && r.client.freeable() && r.target.freeable():
		r.client.b.Free()
		r.target.b.Free()
		r.finish(by)
	default:
		go r.settle(by)
	}
}

// freeable reports whether drain would close x at once without writing
// or losing anything (closesWhole, and its output written), so that
// freeing it (with CloseOnFree: the actor closes its socket as it stops)
// does what draining would.
func (x *side) freeable() bool {
	return x.b != nil && x.dropped.Load() == 0 && x.closesWhole() && x.b.OutputLen() == 0
}

// settle drains and closes both sides, or closes them at once after an
// abort or a forced shutdown, then finishes. A side that lost bytes meant
// for it is cut instead (see cut), so that it cannot take a truncated
// stream for a whole one. It may block.
func (r *relay) settle(by ender) {
	// The client goes first: the target side is made on the client's
	// goroutine when it is TLS, and closing the client joins that.
	if err := context.Cause(r.ctx); err != nil {
		// An abort or the shutdown deadline: close at once, and say so
		// before closing makes the other side report its end.
		r.setCause(err)
		r.closeNow(&r.client)
		r.closeNow(&r.target)
	} else {
		r.drain(&r.client)
		r.drain(&r.target)
	}
	r.finish(by)
}

// closeNow closes x at once: cut if anything meant for it is lost (what
// it was given and did not write counts).
func (r *relay) closeNow(x *side) {
	if x.b == nil {
		return
	}
	if n := x.b.OutputLen(); n > 0 || x.dropped.Load() > 0 {
		r.cut(x, n)
		return
	}
	x.b.Close()
}

// drain writes what x still holds, half-closes and closes it (Drain).
// If the relay is aborted or the shutdown deadline comes meanwhile, x is
// cut. A side that failed (it can take nothing more) or already lost
// bytes is closed at once, as closeNow does.
func (r *relay) drain(x *side) {
	if x.b == nil {
		return
	}
	if x.failed.Load() || x.dropped.Load() > 0 {
		r.closeNow(x)
		return
	}
	if x.closesWhole() && x.b.OutputLen() == 0 {
		// Nothing left to write, nothing left to read: the close is
		// the drain (closesWhole).
		x.b.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cutDone := make(chan struct{})
	stop := context.AfterFunc(r.ctx, func() {
		defer close(cutDone)
		r.cut(x, x.b.OutputLen())
		cancel()
	})
	x.b.Drain(ctx)
	if !stop() {
		<-cutDone
	}
}

// cut ends x so that its peer sees the stream was cut: the TCP
// connection under it is closed with SO_LINGER 0, so the peer gets a
// reset, and it is closed before any layer over it (TLS) can write again,
// so no close_notify follows what x was sent. out is what x's output
// held; what x did not write is counted as dropped (unwritten). Over a
// pair (the tests) there is no connection to reset, and x is just closed.
func (r *relay) cut(x *side, out int) {
	x.cutOut.Store(int64(out))
	netwrap.Reset(x.b.Conn()) //nolint:errcheck // x is closed next either way
	x.b.Close()
}

// unwritten returns what x was given and did not write, once x is
// closed: what its peer relayed to it less what its transport took
// (Written), exact whatever a write in flight when it was cut did. A TLS
// filter's transport takes records, not the relayed bytes; for it the
// output it held when it was cut stands in, which a write in flight then
// may still have sent.
func (r *relay) unwritten(x *side) int64 {
	if x.b == nil {
		return 0
	}
	if x.records {
		return x.cutOut.Load()
	}
	return max(0, x.peer.moved.Load()-x.b.Written())
}

// finish logs the closed connection, releases its contexts, joins the
// linger (unless it runs on it: by), and unregisters it. The byte counts
// are what was written to each side's connection: what was relayed to it
// less what it did not write (unwritten). A connection that lost
// bytes or could not reach the target is logged at WARN, the rest at
// INFO.
func (r *relay) finish(by ender) {
	defer r.p.wg.Done()
	defer r.p.remove(r)
	r.connectCancel()
	if err := context.Cause(r.ctx); err != nil {
		r.setCause(err)
	}
	r.endMu.Lock()
	linger := r.linger // no new one: the end is claimed
	r.endMu.Unlock()
	if linger != nil && !linger.Stop() && by != byLinger {
		<-r.lingerOut // started, and found the end claimed
	}
	r.cancel(nil)
	r.causeMu.Lock()
	cause := r.cause
	r.causeMu.Unlock()
	unClient, unTarget := r.unwritten(&r.client), r.unwritten(&r.target)
	if unClient > 0 {
		r.p.stats.moved(false, -int(unClient))
	}
	if unTarget > 0 {
		r.p.stats.moved(true, -int(unTarget))
	}
	toClient := r.client.dropped.Load() + unClient
	toTarget := r.target.dropped.Load() + unTarget
	level := slog.LevelInfo
	if r.connFail.Load() || toClient > 0 || toTarget > 0 {
		level = slog.LevelWarn
	}
	if !r.logs(level) {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs,
		slog.String("client", addrString(r.remote)),
		slog.Int64("client_to_target", r.client.moved.Load()-unTarget),
		slog.Int64("target_to_client", r.target.moved.Load()-unClient))
	if toClient > 0 || toTarget > 0 {
		attrs = append(attrs, slog.Int64("dropped_to_client", toClient), slog.Int64("dropped_to_target", toTarget))
	}
	attrs = append(attrs,
		slog.Duration("duration", time.Since(r.start).Round(time.Microsecond)),
		slog.Any("cause", cause))
	r.logAt(level, "closed", attrs...)
}

// addrString is a's address, or "" for nil.
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// logs reports whether the proxy's log takes records at level, so that a
// line nobody will read costs nothing to make.
func (r *relay) logs(level slog.Level) bool {
	return r.p.log.Enabled(context.Background(), level)
}

// logAt logs msg about this connection: its id first, then attrs; the
// caller has checked that level is logged (logs). The id is added here
// rather than kept in a logger of the relay's own (slog.Logger.With),
// which would format it for every connection whether anything is logged
// or not. The record goes straight to the handler, as slog.Logger would
// hand it over but for the caller's program counter, which costs a
// runtime.Callers per line and which the proxy's handler does not log.
func (r *relay) logAt(level slog.Level, msg string, attrs ...slog.Attr) {
	rec := slog.NewRecord(time.Now(), level, msg, 0)
	rec.AddAttrs(slog.Uint64("conn", r.id))
	rec.AddAttrs(attrs...)
	r.p.log.Handler().Handle(context.Background(), rec) //nolint:errcheck // as slog.Logger: a failed log write is not the connection's
}
