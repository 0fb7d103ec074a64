package actor

import (
	"time"

	"github.com/bevgo/bev/limiter"
)

// onTimer handles a firing of timer i, unless the timer has been stopped
// or re-armed for later since (a late firing; see Clock): a read or
// write timeout, or the end of a drain's linger.
func (a *actorState) onTimer(i int) {
	armed := [numTimers]bool{a.rArmed, a.wArmed, a.linger.reading()}
	if !armed[i] || !a.timerDue(i) {
		return
	}
	switch i {
	case timerRead:
		a.rArmed = false
		a.onTimeout(Read)
	case timerWrite:
		a.wArmed = false
		if !a.quietWriteProgress() {
			a.onTimeout(Write)
		}
	case timerLinger:
		a.linger.stop() // the peer kept sending: give up waiting
	}
}

// onTimeout reports a read or write timeout: direction d is disabled, as
// libevent does, and Timeout is reported with ErrTimeout.
func (a *actorState) onTimeout(d Dir) {
	a.b.enabled.And(^uint32(d))
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

// timers are a bufferevent's timers: the read and write timeouts and a
// drain's linger, each made when it is first started (most bufferevents
// never set a timeout). They post to the mailbox when they fire (see
// Clock); due holds the time each was last started for, so that a firing
// of an earlier start, come late, is told apart.
type timers struct {
	t   [numTimers]Timer
	due [numTimers]time.Time
}

// The timers, by index (message.timer of the msgTimer each posts).
const (
	timerRead = iota
	timerWrite
	timerLinger
	numTimers
)

// startTimer starts timer i to fire after d.
func (a *actorState) startTimer(i int, d time.Duration) {
	if a.tm == nil {
		a.tm = new(timers)
	}
	clock := a.b.base.Clock()
	a.tm.due[i] = clock.Now().Add(d) // before the timer starts: it fires no sooner
	if a.tm.t[i] != nil {
		a.tm.t[i].Reset(d)
		return
	}
	mail, msg := &a.b.mail, message{kind: msgTimer, timer: uint8(i)}
	a.tm.t[i] = clock.AfterFunc(d, func() { mail.post(msg) })
}

// stopTimer stops timer i, if it was ever started.
func (a *actorState) stopTimer(i int) {
	if a.tm != nil && a.tm.t[i] != nil {
		a.tm.t[i].Stop()
	}
}

// timerDue reports whether timer i's firing is of its latest start: a
// firing that comes before the time it was started for belongs to an
// earlier start, stopped or re-armed since.
func (a *actorState) timerDue(i int) bool {
	return !a.b.base.Clock().Now().Before(a.tm.due[i])
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
