package actor

import (
	"time"

	"github.com/bevgo/bev/limiter"
)

// onTimer handles a firing of the bufferevent's clock timer: each
// deadline that has come (a read or write timeout, the end of a drain's
// linger) is acted on, and the timer is set for the earliest one left. A
// firing that comes before the time the timer is now set for belongs to
// an earlier setting (see Clock) and changes nothing.
func (a *actorState) onTimer() {
	tm := a.tm
	if tm == nil || tm.set.IsZero() {
		return
	}
	now := a.b.base.Clock().Now()
	if now.Before(tm.set) {
		return
	}
	tm.set = time.Time{} // fired: whatever is due next sets it again
	if tm.due(timerRead, now) {
		a.rArmed = false
		a.onTimeout(Read)
	}
	if tm.due(timerWrite, now) {
		a.wArmed = false
		if !a.quietWriteProgress() {
			a.onTimeout(Write)
		}
	}
	if tm.due(timerLinger, now) && a.linger.reading() {
		a.linger.stop() // the peer kept sending: give up waiting
	}
	a.setClockTimer(now)
}

// onTimeout reports a read or write timeout: direction d is disabled, as
// libevent does, and Timeout is reported with ErrTimeout. An Enable of d
// that came after the timer fired, while its message waited for the
// actor, is the later call: d stays enabled (the Enable re-arms the
// timeout when the actor takes it).
func (a *actorState) onTimeout(d Dir) {
	a.b.clearUnlessEnabledSince(d, a.b.fired.Load())
	ev := Timeout | Reading
	if d == Write {
		ev = Timeout | Writing
	}
	a.emit(ev, ErrTimeout)
}

// quietWriteProgress reports, when the write timeout expires, whether a
// buffered transport shows that it should not: it holds less than when
// the timer was armed (progress it did not signal), or it holds nothing
// while nothing else is pending. The timer is then re-armed as needed by
// reconcileTimers instead of reporting Timeout.
func (a *actorState) quietWriteProgress() bool {
	bt, ok := a.t.(bufferedTransport)
	if !ok {
		return false
	}
	held := bt.Buffered()
	if held == 0 {
		return a.pendingOut() == 0 && !a.connecting
	}
	return held < a.wHeld
}

// transportBuffered is what the transport still holds of what it was
// given, when it says (a filter's view of its underlying bufferevent).
func (a *actorState) transportBuffered() int {
	if bt, ok := a.t.(bufferedTransport); ok {
		return bt.Buffered()
	}
	return 0
}

// disarmTimeouts disarms the timeouts of d: progress was made (or Enable or
// SetTimeouts came), so the wait starts over; reconcileTimers arms them
// again if they are still wanted.
func (a *actorState) disarmTimeouts(d Dir) {
	if d&Read != 0 && a.rArmed {
		a.stopTimer(timerRead)
		a.rArmed = false
	}
	if d&Write != 0 && a.wArmed {
		a.stopTimer(timerWrite)
		a.wArmed = false
	}
}

// reconcileTimers arms each timeout that is wanted now and stops each
// that is not: the read timeout while reading is enabled, open and not
// suspended or throttled, the write timeout while writing is enabled and
// something waits to be written.
func (a *actorState) reconcileTimers() {
	rto := time.Duration(a.b.rto.Load())
	wantR := rto > 0 && a.enabled(Read) && !a.readEnd.ended() && !a.readSuspended() && !a.throttled(limiter.Read)
	a.rArmed = a.arm(timerRead, a.rArmed, wantR, rto)
	wto := time.Duration(a.b.wto.Load())
	wantW := wto > 0 && a.enabled(Write) && !a.writeErr &&
		(a.pendingOut() > 0 || a.connecting || a.transportBuffered() > 0) && !a.throttled(limiter.Write)
	if wantW && !a.wArmed {
		a.wHeld = a.transportBuffered()
	}
	a.wArmed = a.arm(timerWrite, a.wArmed, wantW, wto)
}

// throttled reports whether the loops are waiting on a rate limit in d.
func (a *actorState) throttled(d limiter.Dir) bool {
	return a.io != nil && a.io.throttled[d].Load()
}

// timers are a bufferevent's deadlines: the read and write timeouts and
// a drain's linger, all served by one clock timer, made when a deadline
// is first set (most bufferevents never set a timeout). The timer is set
// for the earliest deadline; a deadline that moves later (a timeout
// restarted by progress, every turn of a busy connection) or goes away
// leaves it alone, and its firing, finding nothing due, sets it for what
// is left. So a connection's traffic costs a clock read per restart, not
// a Stop and a Reset of a runtime timer (with the lock of the timer heap
// each takes), and a bufferevent holds one timer, not three.
type timers struct {
	t        Timer
	deadline [numTimers]time.Time // zero: not armed
	set      time.Time            // what t is set to fire at; zero: t has fired or was never set
}

// The deadlines, by index.
const (
	timerRead = iota
	timerWrite
	timerLinger
	numTimers
)

// due reports whether deadline i is armed and has come by now, disarming
// it if so.
func (tm *timers) due(i int, now time.Time) bool {
	d := tm.deadline[i]
	if d.IsZero() || now.Before(d) {
		return false
	}
	tm.deadline[i] = time.Time{}
	return true
}

// startTimer arms deadline i to come after d.
func (a *actorState) startTimer(i int, d time.Duration) {
	if a.tm == nil {
		a.tm = new(timers)
	}
	now := a.b.base.Clock().Now()
	a.tm.deadline[i] = now.Add(d) // taken before the timer is set: it fires no sooner
	a.setClockTimer(now)
}

// stopTimer disarms deadline i. The clock timer stays as it is: if it
// fires for nothing, onTimer sets it for what is left.
func (a *actorState) stopTimer(i int) {
	if a.tm != nil {
		a.tm.deadline[i] = time.Time{}
	}
}

// stopClockTimer stops the clock timer for good, as the actor exits.
func (a *actorState) stopClockTimer() {
	if a.tm != nil && a.tm.t != nil {
		a.tm.t.Stop()
		a.tm.set = time.Time{}
	}
}

// setClockTimer makes the clock timer fire by the earliest armed
// deadline: it is set only when it is not set (or has fired) or is set
// for later than that deadline. A timer already set for earlier is left
// to fire; onTimer then sets it again.
func (a *actorState) setClockTimer(now time.Time) {
	tm := a.tm
	var next time.Time
	for _, d := range tm.deadline {
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if next.IsZero() || (!tm.set.IsZero() && !next.Before(tm.set)) {
		return
	}
	tm.set = next
	if tm.t != nil {
		tm.t.Reset(next.Sub(now))
		return
	}
	b := a.b
	tm.t = b.base.Clock().AfterFunc(next.Sub(now), func() {
		b.fired.Store(b.enabled.Load())
		b.mail.post(message{kind: msgTimer})
	})
}

// arm starts (want) or stops timer i, to fire after d, and reports
// whether it is armed now.
func (a *actorState) arm(i int, armed, want bool, d time.Duration) bool {
	switch {
	case want && !armed:
		a.startTimer(i, d)
		return true
	case !want && armed:
		a.stopTimer(i)
		return false
	}
	return armed
}
