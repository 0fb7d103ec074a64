package clock

import "time"

// Clock is a time source: what bev measures timeouts, lingers and rate
// limits with.
//
// A timer made by AfterFunc runs its func on a goroutine of its own (or,
// for a test's clock, on whatever goroutine moves the time), so the func
// must not block. A firing may come late, after a Stop or a Reset; users
// of a Clock check Now against the time they armed the timer for and
// ignore a firing that is early. So Now and AfterFunc must agree: a timer
// armed for d fires no sooner than Now has moved d on.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f, on a goroutine of its own, once d has passed,
	// and returns the timer, as time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer made by [Clock.AfterFunc], as a time.Timer made by
// time.AfterFunc: Reset schedules f to run once more after d (whether or
// not it has run), and Stop cancels a run that has not started.
type Timer interface {
	Reset(d time.Duration)
	Stop()
}

// Real returns the system's clock: time.Now and time.AfterFunc.
func Real() Clock { return realClock{} }

// OrReal returns c, or the system's clock if c is nil.
func OrReal(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

type realClock struct{}

// Now returns time.Now().
func (realClock) Now() time.Time { return time.Now() }

// AfterFunc runs f on its own goroutine after d, as time.AfterFunc.
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ t *time.Timer }

// Reset restarts the timer to fire after d.
func (t realTimer) Reset(d time.Duration) { t.t.Reset(d) }

// Stop stops the timer; a firing already under way still runs.
func (t realTimer) Stop() { t.t.Stop() }
