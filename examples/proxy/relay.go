package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
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
// flags are written from both sides' actor goroutines and read by the
// relay's own goroutine, so they are atomic.
type side struct {
	name string
	b    *actor.Bufferevent
	peer *side

	moved    atomic.Int64 // bytes read here and handed to the peer
	lastRead atomic.Int64 // time of the last read, in Unix nanoseconds
	choked   atomic.Bool  // reading is off until the peer's output drains; set on the peer's goroutine
	ended    atomic.Bool  // EOF or error: nothing more will be read here
	failed   atomic.Bool  // error: nothing more can be written here either
}

// relay joins one accepted connection to its target: le-proxy's pair of
// bufferevents, each one's read callback moving its input into the
// other's output. Its goroutine waits until both streams have ended, then
// drains and closes both sides, and logs the connection.
type relay struct {
	p     *proxy
	id    uint64
	log   *slog.Logger
	start time.Time

	client, target side

	ctx    context.Context // ends on abort (idle, stalled peer) or forced shutdown
	cancel context.CancelCauseFunc
	wake   chan struct{} // buffered(1): a side ended

	connectStart  time.Time
	connectCancel context.CancelFunc // set before the connect starts; guards nothing else

	causeMu sync.Mutex // guards following
	cause   error      // the first reason the connection began to end
}

func newRelay(p *proxy, id uint64) *relay {
	r := &relay{
		p:             p,
		id:            id,
		log:           p.log.With("conn", id),
		start:         time.Now(),
		wake:          make(chan struct{}, 1),
		connectCancel: func() {},
	}
	r.ctx, r.cancel = context.WithCancelCause(p.killCtx)
	r.client.name, r.target.name = "client", "target"
	r.client.peer, r.target.peer = &r.target, &r.client
	return r
}

// starter is what the relay calls to start a side: *conn.Socket's
// SetCallbacks and Enable also start a TLS handshake, which the embedded
// *actor.Bufferevent's do not.
type starter interface {
	SetCallbacks(actor.Callbacks)
	Enable(actor.Dir) error
}

// begin sets both sides up and starts relaying. Reading starts at once on
// both: bytes for a target still connecting wait in its output, and the
// backpressure below holds the client back if that grows.
func (r *relay) begin(client, target starter) {
	for _, x := range []*side{&r.client, &r.target} {
		x.lastRead.Store(r.start.UnixNano())
		// The low mark makes the write callback run whenever this side's
		// output has drained to lowOutput, which is when the other side
		// may read again.
		x.b.SetWatermark(actor.Write, lowOutput, maxOutput)
		if d := r.p.cfg.idleTimeout; d > 0 {
			x.b.SetTimeouts(d, d)
		}
	}
	client.SetCallbacks(r.callbacks(&r.client))
	target.SetCallbacks(r.callbacks(&r.target))
	client.Enable(actor.Read | actor.Write)
	target.Enable(actor.Read | actor.Write)
}

func (r *relay) callbacks(x *side) actor.Callbacks {
	return actor.Callbacks{
		Read:  func(s *actor.Session) { r.onRead(x, s) },
		Write: func(s *actor.Session) { r.onWrite(x, s) },
		Event: func(s *actor.Session, ev actor.Event, err error) { r.onEvent(x, s, ev, err) },
	}
}

// onRead moves everything x has read into its peer's output without
// copying (le-proxy's readcb). It runs on x's actor goroutine.
func (r *relay) onRead(x *side, s *actor.Session) {
	in := s.Input()
	n := in.Len()
	if n == 0 {
		return
	}
	x.lastRead.Store(time.Now().UnixNano())
	y := x.peer
	if y.failed.Load() || y.b.WriteBuffer(in) != nil {
		// Nowhere to deliver: read to the end and drop it (see
		// lingerTimeout).
		in.Drain(in.Len())
		return
	}
	x.moved.Add(int64(n))
	r.p.stats.moved(x == &r.client, n)
	// le-proxy checks the peer's output length right here, but here it
	// is only the length y last published, behind the chunks still in
	// its mailbox. The trigger runs y's write callback on y's own
	// goroutine right after these bytes have landed, where the length is
	// exact.
	y.b.Trigger(actor.Write, actor.TriggerIgnoreWatermarks)
}

// onWrite runs on y's actor goroutine after the bytes onRead moved have
// landed in y's output, and whenever that output has drained to lowOutput
// or below: le-proxy's backpressure test and its drained_writecb in one.
// When the output holds maxOutput bytes, the side feeding it stops
// reading; once it has drained to lowOutput, that side reads again. Only
// this goroutine changes x.choked (besides onEnd on the same goroutine),
// so pausing and resuming cannot race.
func (r *relay) onWrite(y *side, s *actor.Session) {
	x := y.peer
	switch n := s.Output().Len(); {
	case n >= maxOutput:
		// Disable again even when already paused: it costs nothing and
		// undoes an Enable by x's idle check racing with the first one.
		x.b.Disable(actor.Read)
		if !x.choked.Swap(true) {
			r.p.stats.pauses.Add(1)
			if r.p.onPause != nil {
				r.p.onPause()
			}
		}
	case n <= lowOutput && x.choked.Load():
		x.choked.Store(false)
		x.b.Enable(actor.Read)
	}
}

func (r *relay) onEvent(x *side, s *actor.Session, ev actor.Event, err error) {
	switch {
	case ev&actor.Connected != 0:
		if x == &r.target {
			r.connectCancel()
			r.log.Info("target connected", "target", r.p.targetAddr, "after", time.Since(r.connectStart).Round(time.Microsecond))
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
	if in := s.Input(); in.Len() > 0 && !y.failed.Load() {
		n := in.Len()
		if y.b.WriteBuffer(in) == nil {
			x.moved.Add(int64(n))
			r.p.stats.moved(x == &r.client, n)
		}
	}
	if ev&actor.Error != 0 {
		x.failed.Store(true)
		s.Disable(actor.Read)
		r.setCause(r.describe(x, ev, err))
		if x == &r.target && ev&(actor.Reading|actor.Writing) == 0 {
			r.p.stats.failed.Add(1) // the connect failed
		}
		// y may be waiting for x's output to drain, which it never will.
		if y.choked.Swap(false) {
			y.b.Enable(actor.Read)
		}
	} else {
		r.setCause(fmt.Errorf("%s closed", x.name))
	}
	x.ended.Store(true)
	y.b.Flush(actor.Write, actor.Finished)
	r.poke()
}

// onTimeout is the idle timeout. Each side's read timeout runs only while
// that side reads nothing, so a long download trips the client's; it is
// idle only if the target has been quiet as long. A write timeout means
// the peer has taken nothing for that long.
func (r *relay) onTimeout(x *side, s *actor.Session, ev actor.Event) {
	idle := r.p.cfg.idleTimeout
	last := time.Unix(0, max(r.client.lastRead.Load(), r.target.lastRead.Load()))
	if ev&actor.Reading != 0 {
		if x.choked.Load() {
			return // paused by backpressure: the peer's write timeout watches this
		}
		if time.Since(last) < idle {
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
		if errors.Is(err, context.DeadlineExceeded) {
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

func (r *relay) abort(err error) {
	r.setCause(err)
	r.cancel(err)
}

func (r *relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run waits until both streams have ended, or one side failed and the
// other has lingered long enough, then drains and closes both sides (a
// forced shutdown or an abort closes them at once) and logs the
// connection. The proxy's WaitGroup waits for it.
func (r *relay) run() {
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	var lingerC <-chan time.Time
wait:
	for !r.client.ended.Load() || !r.target.ended.Load() {
		if lingerC == nil && (r.client.failed.Load() || r.target.failed.Load()) {
			if r.client.failed.Load() && r.client.moved.Load() == 0 || r.target.failed.Load() && r.target.moved.Load() == 0 {
				// The failed side never sent the other a byte (a
				// connect that failed, say): a reset can lose nothing.
				break
			}
			linger = time.NewTimer(lingerTimeout)
			lingerC = linger.C
		}
		select {
		case <-r.wake:
		case <-lingerC:
			break wait
		case <-r.ctx.Done():
			break wait
		}
	}
	if err := context.Cause(r.ctx); err != nil {
		// An abort or the shutdown deadline: close at once, and say so
		// before closing makes the other side report its end.
		r.setCause(err)
	} else {
		// Drain writes what is left, half-closes and closes; it gives up
		// (and closes at once) if ctx ends meanwhile.
		r.client.b.Drain(r.ctx)
		r.target.b.Drain(r.ctx)
	}
	r.client.b.Close()
	r.target.b.Close()
	r.finish()
}

// finish logs the closed connection, releases its contexts and
// unregisters it.
func (r *relay) finish() {
	defer r.p.remove(r)
	r.connectCancel()
	if err := context.Cause(r.ctx); err != nil {
		r.setCause(err)
	}
	r.cancel(nil)
	r.causeMu.Lock()
	cause := r.cause
	r.causeMu.Unlock()
	r.log.Info("closed",
		"client_to_target", r.client.moved.Load(),
		"target_to_client", r.target.moved.Load(),
		"duration", time.Since(r.start).Round(time.Microsecond),
		"cause", cause)
}
