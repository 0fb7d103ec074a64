package actor

import (
	"errors"
)

// deferred reports whether a callback must wait for a turn: the
// bufferevent defers all its callbacks, or topt asks for it.
func (a *actorState) deferred(topt TriggerOption) bool {
	return a.b.opts&DeferCallbacks != 0 || topt&TriggerDefer != 0
}

// hasDeferred reports whether any callback waits for a turn (runDeferred).
func (a *actorState) hasDeferred() bool { return a.defRead || a.defWrite || a.defEvents != 0 }

// fireCallback runs the read or write callback now, or queues it for a
// turn when DeferCallbacks or topt (TriggerDefer) asks.
func (a *actorState) fireCallback(d Dir, topt TriggerOption) {
	if a.deferred(topt) {
		if d == Read {
			a.defRead = true
		} else {
			a.defWrite = true
		}
		return
	}
	a.call(d)
}

// syncChannels picks up the In and Events channels as soon as they exist,
// so that no input or event slips past a channel asked for before it.
func (a *actorState) syncChannels() {
	f := a.b.chans.Load()
	if f&chanIn != 0 && !a.inChanUsed {
		a.b.chMu.Lock()
		a.inC = a.b.in
		a.b.chMu.Unlock()
		a.inChanUsed = true
	}
	if f&chanEvents != 0 && !a.evChanUsed {
		a.b.chMu.Lock()
		a.evC = a.b.events
		a.b.chMu.Unlock()
		a.evChanUsed = true
		if a.earlyEv != 0 {
			a.releaseEarly() // what came before anyone listened goes first
		}
	}
}

// emit reports ev with its cause: on the Events channel when there is
// one, else to the event callback, now or deferred; with no callbacks set
// yet it is held for the first SetCallbacks. An EOF or Error records err
// as what Err returns.
func (a *actorState) emit(ev Event, err error) {
	a.syncChannels()
	if ev&(EOF|Error) != 0 && err != nil {
		a.b.setErr(err)
	}
	if a.evC != nil {
		a.evq = append(a.evq, EventInfo{ev, err})
	} else if a.b.cbs.Load() == nil {
		// Nobody has set a callback yet: the caller is still setting up
		// (connected first, as le-proxy does, and about to set them).
		// libevent's callbacks would wait for its loop; these wait for
		// the first SetCallbacks.
		a.earlyEv |= ev
		if a.earlyErr == nil {
			a.earlyErr = err
		}
		return
	}
	if a.deferred(0) {
		a.deferEvent(ev, err)
		return
	}
	a.callEvent(ev, err)
}

// releaseEarly delivers the events held for the first SetCallbacks: a
// connect first, then the rest in one call, as runDeferred does.
func (a *actorState) releaseEarly() {
	ev, err := a.earlyEv, a.earlyErr
	a.earlyEv, a.earlyErr = 0, nil
	if ev&Connected != 0 {
		ev &^= Connected
		a.emit(Connected, nil)
	}
	if ev != 0 {
		a.emit(ev, err)
	}
}

// deferEvent queues ev for the next turn, ORed into what waits; the first
// cause queued is the one reported.
func (a *actorState) deferEvent(ev Event, err error) {
	a.defEvents |= ev
	if a.defErr == nil {
		a.defErr = err
	}
}

// runDeferred runs what was queued in libevent's order: a connect first,
// then read, then write, then the other event bits ORed into one call.
func (a *actorState) runDeferred() {
	a.scheduled = false
	if a.defEvents&Connected != 0 {
		a.defEvents &^= Connected
		a.callEvent(Connected, nil)
	}
	if a.defRead {
		a.defRead = false
		a.call(Read)
	}
	if a.defWrite {
		a.defWrite = false
		a.call(Write)
	}
	if ev := a.defEvents; ev != 0 {
		err := a.defErr
		a.defEvents, a.defErr = 0, nil
		a.callEvent(ev, err)
	}
}

// trigger is Trigger on the actor: the read and/or write callback if its
// watermark allows (or TriggerIgnoreWatermarks), now or deferred.
func (a *actorState) trigger(d Dir, topt TriggerOption) {
	ignore := topt&TriggerIgnoreWatermarks != 0
	if d&Read != 0 && (ignore || a.input.Len() >= a.b.rwm.Load().low) {
		a.fireCallback(Read, topt)
	}
	if d&Write != 0 {
		if _, low := a.writeMarks(); ignore || a.output.Len() <= low {
			a.fireCallback(Write, topt)
		}
	}
}

// triggerEvent is TriggerEvent on the actor: the event callback with ev,
// now or deferred.
func (a *actorState) triggerEvent(ev Event, topt TriggerOption) {
	if a.deferred(topt) {
		a.deferEvent(ev, nil)
		return
	}
	a.callEvent(ev, nil)
}

// The one place user code runs: a panic closes this bufferevent with an
// Error event carrying the panic, and nothing else.

// call runs the read or write callback, if set, unless the bufferevent is
// stopping; a panic in it fails the bufferevent (recoverPanic).
func (a *actorState) call(d Dir) {
	cbs := a.b.cbs.Load()
	if cbs == nil || a.stopping {
		return
	}
	f := cbs.Read
	if d == Write {
		f = cbs.Write
	}
	if f == nil {
		return
	}
	a.publishOut() // OutputLen is exact in the bufferevent's own callbacks
	defer a.recoverPanic(false)
	f(&a.sess)
}

// callEvent runs the event callback with ev and err, if set, unless the
// bufferevent is stopping; a panic in it fails the bufferevent without
// calling it again.
func (a *actorState) callEvent(ev Event, err error) {
	cbs := a.b.cbs.Load()
	if cbs == nil || cbs.Event == nil || a.stopping {
		return
	}
	defer a.recoverPanic(true)
	cbs.Event(&a.sess, ev, err)
}

// callFunc runs a Do's fn on the actor and closes done after it, even if
// it panicked.
func (a *actorState) callFunc(fn func(*Session), done chan struct{}) {
	defer close(done)
	a.publishOut()
	defer a.recoverPanic(false)
	fn(&a.sess)
}

// doFunc is what Do runs: fn, with a panic recovered here so that Do can
// return it, and then handled as any callback's panic.
type doFunc struct {
	fn  func(*Session)
	err error // the *PanicError, once fn panicked; read after done closes
}

// run runs fn, keeping a panic as d.err for Do to return and failing the
// bufferevent with it as a callback's panic would.
func (d *doFunc) run(s *Session) {
	defer func() {
		if r := recover(); r != nil {
			d.err = newPanicError(r)
			s.a.fail(Error, d.err, false)
		}
	}()
	d.fn(s)
}

// callStage runs st.Process, turning a panic into StageError with a
// *PanicError.
func (a *actorState) callStage(st Stage, dst, src *Buffer, limit int, mode FlushMode) (res StageResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = StageError, newPanicError(r)
		}
	}()
	return st.Process(dst, src, limit, mode)
}

// recoverPanic, deferred around user code, turns a panic into fail with a
// *PanicError; inEvent says the event callback panicked, so it is not
// called with that failure.
func (a *actorState) recoverPanic(inEvent bool) {
	if r := recover(); r != nil {
		a.fail(Error, newPanicError(r), inEvent)
	}
}

// fail reports ev with err and stops the bufferevent. The event callback
// is skipped when it is the one that failed.
func (a *actorState) fail(ev Event, err error, skipCallback bool) {
	if a.failing || a.stopping {
		return
	}
	a.failing = true
	if errors.Is(err, ErrPanic) {
		a.b.setFailure(err) // a panic is a failure even after a clean EOF
	} else {
		a.b.setErr(err)
	}
	a.syncChannels()
	if a.evC != nil {
		a.evq = append(a.evq, EventInfo{ev, err})
	}
	if !skipCallback {
		a.callEvent(ev, err)
	}
	a.stopping = true
	a.b.Free()
}
