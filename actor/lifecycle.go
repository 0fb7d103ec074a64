package actor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bevgo/bev/clock"
)

// attach makes t the transport. A Handshaker not ready yet (given by New
// or SetTransport, not made by a connect's dial, which runs any handshake
// itself) gets no loops until its handshake has run: see startHandshake.
func (a *actorState) attach(t Transport, ready bool) {
	a.t = t
	a.b.curTransport.Store(&transportBox{t})
	a.stopTimer(timerLinger) // a linger of the transport before
	a.linger = lingerOff
	if a.writeErr {
		// The transport before failed a write: the new one starts with an
		// output that works, as a libevent reconnect does (writing stays
		// disabled until Enable(Write), as libevent's error left it).
		a.writeErr, a.writeReset = false, false
		a.b.clearOutputFailure()
	}
	a.dropClosedIn()
	a.b.newStream()
	a.readEnd = readOpen
	a.endWhileDisabled = nil
	a.eofPending, a.inStarved, a.inPending = false, false, Normal
	a.closeWrite = closeWriteNone
	if _, ok := t.(Handshaker); ok && !ready {
		a.handshake = true
		return
	}
	a.startIO()
}

// startIO starts the loops of the transport, which is ready for I/O.
func (a *actorState) startIO() {
	t := a.t
	a.io = newTransportIO(t, &a.b.maxRead, &a.b.rwm, &a.b.rate, &a.b.written, a.b.mail.wake)
	if a.io.sys != nil {
		a.b.mail.parker.Store(&a.io.park)
		// The sink a parked actor lends (lend.go): a socket's sink is a
		// viewSink with the side door, and a borrower only reaches it
		// after the actor lent it, which it does only while waiting in
		// this transport's socket.
		a.b.lentSink.Store(a.io.out.(*viewSink))
	}
	if a.io.pull != nil {
		a.io.pull.NotifyReadable(a.b.mail.wake)
	}
	if p, ok := t.(progressNotifier); ok {
		mail := &a.b.mail
		p.NotifyProgress(func() { mail.post(message{kind: msgProgress}) })
	}
}

// wantsIO reports whether the bufferevent would read or write now if its
// transport were ready: reading is enabled, output waits with writing
// enabled, or a half-close or drain waits.
func (a *actorState) wantsIO() bool {
	return a.enabled(Read) || a.enabled(Write) && a.pendingOut() > 0 ||
		a.closeWrite.asked() || len(a.drainWaiters) > 0
}

// startHandshake runs the handshake of the transport, a Handshaker, on a
// goroutine the bufferevent owns, as a connect's dial runs: Close cancels
// it, and connects and transport changes are refused (ErrBusy) meanwhile.
// It is started when the bufferevent first wants I/O, so that any method
// that does (Enable, Write, In, Flush with Finished, Drain) starts it,
// and a socket nobody uses yet does not answer its peer. Its ctx, as a
// dial's (startConnect), carries the Base's clock (clock.NewContext), so
// that a bound the transport sets itself follows it. onHandshake takes
// the result.
func (a *actorState) startHandshake() {
	h := a.t.(Handshaker)
	a.handshake = false
	ctx, cancel := context.WithCancel(clock.NewContext(context.Background(), a.b.base.Clock()))
	a.connCancel = cancel
	a.connecting = true
	a.b.connState.Store(connBusy)
	a.connWG.Go(func() {
		err := handshake(ctx, h)
		a.b.mail.post(message{kind: msgConnected, tr: &transportMsg{err: err, handshake: true}})
	})
}

// onHandshake takes the result of the transport's handshake: Connected
// and the loops started, or Error with its cause and the transport
// closed (and dropped), as a failed connect.
func (a *actorState) onHandshake(err error) {
	a.endConnect()
	a.b.connState.Store(connIdle)
	if a.t == nil {
		return
	}
	if err != nil {
		a.detach(true)
		a.connectFailed(err)
		return
	}
	a.startIO()
	a.emit(Connected, nil)
}

// detach stops the loops of the current transport and forgets it. It
// returns the error of closing the transport, but not net.ErrClosed: a
// transport closed already (by a handshake that closes its connection
// when cancelled, as crypto/tls's does, or by its owner) is what the
// close asked for.
func (a *actorState) detach(closeT bool) error {
	var err error
	if a.io != nil {
		a.b.mail.parker.Store(nil)
		if a.io.pull != nil {
			a.io.pull.NotifyReadable(nil)
		}
		a.awaitSink()                      // a borrower may be writing through the sink
		a.b.lentErr.Store(nil)             // that transport's
		err = a.io.stop(closeT || a.ownsT) // drops a batch the writer never wrote
		a.io = nil
	} else if a.t != nil && (closeT || a.ownsT) {
		err = a.t.Close()
	}
	if p, ok := a.t.(progressNotifier); ok {
		p.NotifyProgress(nil)
	}
	a.t = nil
	a.handshake = false
	a.writing = false
	a.taken = 0
	a.b.curTransport.Store(nil)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// startConnect runs dial on a goroutine the bufferevent owns (connWG),
// which posts the result as msgConnected (see onConnect); a result the
// actor will not see, because it stopped, has its transport closed. A
// ConnectNet's dial the actor runs itself when it has nothing else to do
// until the dial is over (dialHere).
func (a *actorState) startConnect(ctx context.Context, dial DialFunc) {
	ctx, cancel := context.WithCancel(clock.NewContext(ctx, a.b.base.Clock()))
	a.connCancel = cancel
	a.connecting = true
	a.b.newStream() // a failed connect is what Err reports, not the stream before
	if a.b.dialNet.Load() && a.idleWhileDialing() {
		a.dialHere(ctx, dial)
		return
	}
	a.connWG.Go(func() {
		t, err := dialTransport(ctx, dial)
		if !a.b.mail.post(message{kind: msgConnected, tr: &transportMsg{t: t, err: err}}) && t != nil {
			t.Close()
		}
	})
}

// idleWhileDialing reports whether the actor has nothing to do while a
// dial runs, so that it may run the dial itself: no transport (whose
// loops or socket it would tend), no timeout or stage (whose timers
// would fire unheard), no deferred callbacks (the Base's dispatcher
// would wait for the turn) and no rate limit. What else comes meanwhile
// waits in the mailbox: writes, which go out once connected, settings,
// and Free, which cancels the dial (dialCancel).
func (a *actorState) idleWhileDialing() bool {
	b := a.b
	return a.t == nil && a.io == nil && b.rto.Load() == 0 && b.wto.Load() == 0 &&
		a.inStage == nil && a.outStage == nil &&
		b.opts&DeferCallbacks == 0 && !a.hasDeferred() && !a.scheduled &&
		!b.rate.Load().limited()
}

// dialHere runs dial on the actor's goroutine and takes its result as
// onConnect does, which a goroutine for the dial, its stack grown by the
// dial's and its result posted back, would cost (libevent's connect does
// not wait either: its socket's writability is the result). Free cancels
// the dial; a result that comes after Free is dropped, its transport
// closed, as exit drops a posted one.
func (a *actorState) dialHere(ctx context.Context, dial DialFunc) {
	b := a.b
	cancel := a.connCancel
	b.dialCancel.Store(&cancel)
	if isClosedChan(b.closing) {
		cancel() // Free came before the store: it did not see it
	}
	t, err := dialTransport(ctx, dial)
	b.dialCancel.Store(nil)
	if isClosedChan(b.closing) {
		if t != nil {
			t.Close()
		}
		a.endConnect()
		return
	}
	a.onConnect(t, err)
}

// handshake runs h's handshake; a panic in it is returned as a
// *PanicError, which fails the bufferevent (onHandshake) as a callback's
// panic does, instead of ending the process from a goroutine the
// bufferevent owns.
func handshake(ctx context.Context, h Handshaker) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = newPanicError(r)
		}
	}()
	return h.Handshake(ctx)
}

// connectFailed reports a failed connect or handshake: an Error event, or,
// when the user's dial or Handshake panicked, the failure of the
// bufferevent, as a callback's panic is.
func (a *actorState) connectFailed(err error) {
	if errors.Is(err, ErrPanic) {
		a.fail(Error, err, false)
		return
	}
	a.emit(Error, err)
}

// dialTransport runs dial; a dial that returns neither a transport nor an
// error fails with ErrNoTransport, and one that panics with a *PanicError
// (see handshake).
func dialTransport(ctx context.Context, dial DialFunc) (t Transport, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, newPanicError(r)
		}
	}()
	t, err = dial(ctx)
	if err == nil && t == nil {
		err = fmt.Errorf("connect: dial returned no transport: %w", ErrNoTransport)
	}
	return t, err
}

// endConnect ends a connect or handshake whose result the actor has:
// its context is released and the goroutine that ran it, if any, joined.
func (a *actorState) endConnect() {
	a.connCancel()
	a.connCancel = nil
	a.connecting = false
	a.connWG.Wait()
}

// onConnect takes a connect's result: the new transport replaces the old
// and Connected is reported, or Error with dial's error.
func (a *actorState) onConnect(t Transport, err error) {
	a.endConnect()
	if err != nil {
		a.b.connState.Store(connIdle)
		a.connectFailed(err)
		return
	}
	// A Flush(Write, Finished) or Drain made while connecting was meant
	// for the connection being made: keep it across attach, which starts
	// the new transport with a clean half-close state.
	finish := a.closeWrite.due()
	a.detach(true)
	a.attach(t, true)
	if finish {
		a.closeWrite.ask()
	}
	a.b.connState.Store(connIdle)
	a.emit(Connected, nil)
}

// errStopped is the cause a bufferevent stopped by Close keeps when
// nothing came first: made once, not for every bufferevent that stops.
var errStopped = fmt.Errorf("bufferevent: %w", ErrClosed)

// lingerTime bounds how long Drain reads, after its half-close, waiting
// for the peer's EOF.
const lingerTime = 2 * time.Second

// checkDrain wakes Drain once the output is written and the transport
// half-closed. On a network connection it first lingers: it reads and
// drops whatever the peer still sends until the peer's EOF (or
// lingerTime), because closing a TCP connection with unread input makes
// the kernel send a reset instead of a FIN, and a reset throws away output
// the peer has not read yet (net/http's closeWriteAndWait does the same).
func (a *actorState) checkDrain() {
	if len(a.drainWaiters) == 0 {
		return
	}
	done := a.writeErr || (a.io == nil && !a.connecting)
	if a.closeWrite.finished() && !done {
		done = true
		if _, netConn := a.t.(net.Conn); netConn && !a.linger.over() &&
			!a.readEnd.ended() && a.endWhileDisabled == nil {
			if !a.linger.active() {
				a.linger.start()
				a.startTimer(timerLinger, lingerTime)
			}
			done = false
		}
	}
	if done {
		a.stopTimer(timerLinger)
		a.noteDrainLost()
		for _, c := range a.drainWaiters {
			close(c)
		}
		a.drainWaiters = nil
	}
}

// noteDrainLost records, for the Drain calls waiting, that the output
// failed before the half-close was done, so that what they were to write
// is lost (Drain then returns ErrOutputLost). A write that fails after the
// half-close (bytes written after it) loses nothing a Drain promised.
func (a *actorState) noteDrainLost() {
	if len(a.drainWaiters) == 0 || !a.writeErr || a.closeWrite.finished() {
		return
	}
	b := a.b
	b.errMu.Lock()
	if b.drainLost == nil {
		b.drainLost = b.wErr
	}
	b.errMu.Unlock()
}

// discard drops what a lingering read brought (n bytes in src); its end
// (err) ends lingering.
func (a *actorState) discard(src *Buffer, n int, err error) {
	if src != nil {
		src.dropAll()
	}
	if err != nil {
		a.linger.stop()
	}
}

// exit is the actor's last act (run defers it): it stops the timers, a
// connect and the loops, closes the transport as the options say, drops
// what is still queued or buffered, fails later writes with ErrClosed,
// closes the channels, and closes done, which Close waits for.
func (a *actorState) exit() {
	b := a.b
	a.noteDrainLost() // before the stop's own ErrClosed fails the output
	a.stopping = true
	b.Free()
	a.stopClockTimer()
	if a.connCancel != nil {
		a.connCancel()
	}
	a.connWG.Wait()
	err := a.detach(b.opts&CloseOnFree != 0)
	b.leaveRate()
	for _, m := range b.mail.close() {
		if m.kind == msgConnected && m.tr.t != nil {
			m.tr.t.Close()
		}
		if m.c != nil {
			m.c.release()
		}
		if m.buf != nil {
			m.buf.release()
		}
	}
	a.input.release()
	a.output.release()
	a.rawIn.release()
	a.rawOut.release()
	b.enabled.Store(0)
	b.cbs.Store(nil)
	b.setErr(errStopped)
	b.failOutput(errStopped)
	a.syncChannels()
	for _, e := range a.evq {
		select {
		case a.evC <- e:
		default:
		}
	}
	b.chMu.Lock()
	b.exited = true
	if b.in != nil && !b.inClosed {
		close(b.in)
		b.inClosed = true
	}
	if b.events != nil {
		close(b.events)
	}
	b.chMu.Unlock()
	if b.pair != nil {
		b.pair.unlink()
	}
	b.inLen.Store(0)
	// The mailbox is closed: no sender adds to outLen any more (they add
	// under its lock, and only while it is open), so this is final.
	b.outLen.Store(0)
	b.closeErr = err
	close(b.done)
	// Only now off the Base's books: a Base.Close that takes its list
	// before this still finds the bufferevent and waits for done, which
	// is closed already; unregistered before done, a bufferevent freed
	// earlier could be missed by a Base.Close that then returned while
	// its actor was still exiting.
	b.base.Unregister(b)
}

// runGrown is the goroutine of an actor with LargeStack: it grows its
// stack at once to 8 KiB (grownStack), from the one frame it has, then
// runs: one copy of one frame, instead of two or three copies by
// doubling deep in callbacks, a dial and a log line.
func (a *actorState) runGrown() {
	grownStack()
	a.run()
}

// stackIndex is always 0: read, never written, it keeps grownStack's
// array from being optimised away.
var stackIndex int

// grownStack has a 6 KiB frame: calling it from a goroutine's first
// frame grows the stack to 8 KiB in one copy (a frame of 7 KiB and the
// stack guard would not fit in 8 and take 16).
//
//go:noinline
func grownStack() byte {
	var buf [6 << 10]byte
	return buf[stackIndex]
}
