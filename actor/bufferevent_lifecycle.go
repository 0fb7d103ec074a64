package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Connect makes the transport with dial, run on a goroutine the
// bufferevent owns, and then reports exactly one event: Connected, or
// Error with dial's error (and no data callbacks); a dial that panics
// closes the bufferevent as a callback's panic does. Writes made before the
// connect completes are sent after it. Closing the bufferevent or ending
// ctx cancels dial's context, which carries the Base's clock
// (clock.FromContext) for any bound dial sets itself. Connect fails at once with an error wrapping
// ErrInvalid for a nil dial, ErrBusy while another connect is in flight,
// and ErrClosed after the bufferevent has stopped; a transport already in
// place is replaced (closed) when the new one arrives. The event may come
// at once: see SetCallbacks for events that come before callbacks are set.
func (b *Bufferevent) Connect(ctx context.Context, dial DialFunc) error {
	return b.connect(ctx, dial, false)
}

// ConnectNet is Connect for a dial that waits on nothing but the network
// and ctx: a net.Dialer's dial, and a handshake over the new connection,
// as package conn's connects are. When the bufferevent has nothing else
// to do meanwhile (no transport, timeouts, stages, deferred callbacks or
// rate limit), its actor runs the dial itself rather than on a goroutine
// of its own, which saves the goroutine, its stack and the hand-off of
// the result: what libevent's connect does not pay either. Messages
// posted meanwhile (a Do, say) then wait until the dial returns; Free and
// Close cancel it at once, and nothing is reported after them. dial must
// not wait for the bufferevent itself. It fails as Connect does.
func (b *Bufferevent) ConnectNet(ctx context.Context, dial DialFunc) error {
	return b.connect(ctx, dial, true)
}

// connect posts a connect; here: the actor may run dial itself
// (ConnectNet).
func (b *Bufferevent) connect(ctx context.Context, dial DialFunc, here bool) error {
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
	// Only this connect sets it until the actor is done with it (the
	// compare-and-swap above), and the post hands it over.
	b.dialNet.Store(here)
	if !b.mail.post(message{kind: msgConnect, tr: &transportMsg{ctx: ctx, dial: dial}}) {
		b.connState.Store(connIdle)
		return fmt.Errorf("connect: %w", ErrClosed)
	}
	return nil
}

// SetTransport gives the bufferevent a new transport (libevent's setfd).
// The loops of the old one are stopped; the old transport is not closed
// when it has deadlines to stop its loops with (nor is it closed by a
// later Close). nil detaches the transport. It fails with an error
// wrapping ErrBusy while a connect or a handshake is in flight and
// ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) SetTransport(t Transport) error { return b.setTransport(t, false) }

// ReplaceTransport is SetTransport that closes the old transport first
// (libevent's replacefd). It fails as SetTransport does, and then closes
// nothing.
func (b *Bufferevent) ReplaceTransport(t Transport) error { return b.setTransport(t, true) }

// setTransport posts the new transport to the actor (replace: close the
// old one first). It fails with ErrBusy while a connect or handshake runs
// and ErrClosed once the bufferevent has stopped.
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
		if cancel := b.dialCancel.Load(); cancel != nil {
			(*cancel)() // a dial on the actor's goroutine (dialHere)
		}
		b.mail.wake()
	})
}

// Close is Free followed by waiting until the actor and both loops have
// exited. It returns the error of closing the transport (nil when it was
// not closed, or was closed already: net.ErrClosed, as after a handshake
// that closes its connection when cancelled, is not reported), the same
// to every caller, however many and from whatever goroutine. It must not
// be called from this bufferevent's own callbacks (use Session.Close),
// nor from a callback of a bufferevent that this one's callbacks might be
// waiting for; Free is safe there.
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
// bufferevent drain in turn, and then closes. It writes only while writing
// is enabled, as every write does: with Write disabled it waits for
// Enable(Write) (or ctx's end). On a network connection
// (a net.Conn transport) it then waits up to 2 s for the peer's EOF,
// reading and dropping what the peer still sends, before it closes:
// closing a TCP connection with unread input sends a reset, which would
// destroy output the peer has not read yet. ctx bounds the whole of it,
// that wait included: give it a deadline to wait less (Drain then closes
// at once when ctx ends). It returns Close's result, or, when ctx ends
// first, closes at once and returns an error wrapping ctx's cause. When a
// write to the transport failed before all the output was written and
// the transport half-closed (a reset, a broken pipe), it closes and
// returns an error wrapping ErrOutputLost and that cause; when the
// bufferevent failed first (a panic, a stage's error), an error wrapping
// that failure. As Close, it must not be called from this bufferevent's
// own callbacks or Do functions, which the actor would have to return
// from first: there, Session.Flush(Write, Finished) asks for the same
// half-close, and Session.Close closes.
func (b *Bufferevent) Drain(ctx context.Context) error {
	if b.zero() {
		return errZero
	}
	if ctx == nil {
		ctx = context.Background()
	}
	drained := make(chan struct{})
	var failed error // why the bufferevent stopped before the drain was done
	if b.mail.post(message{kind: msgDrain, done: drained}) {
		select {
		case <-drained:
		case <-b.done:
			if !isClosedChan(drained) {
				failed = b.failure()
			}
		case <-ctx.Done():
			b.Close()
			return fmt.Errorf("drain: %w", context.Cause(ctx))
		}
	}
	if err := b.outputLost(); err != nil {
		b.Close()
		return fmt.Errorf("drain: %w: %w", ErrOutputLost, err)
	}
	if failed != nil {
		b.Close()
		return fmt.Errorf("drain: %w", failed)
	}
	if d, ok := b.Transport().(interface{ Drain(context.Context) error }); ok && b.opts&CloseOnFree != 0 {
		if err := d.Drain(ctx); err != nil {
			b.Close()
			return fmt.Errorf("drain: %w", err)
		}
	}
	return b.Close()
}

// failure returns why the bufferevent stopped when that was a failure (a
// panic, a stage's error, a read error): nil when it was closed (Close,
// Free) or had read the peer's EOF.
func (b *Bufferevent) failure() error {
	err := b.Err()
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// outputLost returns the cause when a write to the transport failed (a
// reset, a broken pipe) while a Drain waited and before its half-close
// was done, so that output was lost (see noteDrainLost); nil otherwise,
// after a plain stop (Close, Free) too, whose dropping of pending output
// is documented.
func (b *Bufferevent) outputLost() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.drainLost
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
// *PanicError then replaces io.EOF. A connect or a new transport starts
// a new stream: Err is nil again until it ends (or the connect fails).
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

// setErr records err as what Err returns, unless an error is recorded
// already: the first cause wins.
func (b *Bufferevent) setErr(err error) {
	b.errMu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.errMu.Unlock()
}

// newStream forgets why the stream before ended, as a connect or a new
// transport starts another: Err says why the current one ended.
func (b *Bufferevent) newStream() {
	b.errMu.Lock()
	b.err = nil
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
