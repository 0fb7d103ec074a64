package limiter

import (
	"time"

	"github.com/bevgo/bev/clock"
)

// An Option configures a [Bucket] or a [Group] as [NewBucket] or
// [NewGroup] makes it. No option means the defaults.
type Option func(*options)

type options struct {
	clock clock.Clock // nil: the system's clock, read directly
}

// WithClock makes the bucket or group tell the time, and sleep in Wait,
// on c instead of the system's clock: ticks start and refills happen as
// c's time moves. A nil c means the system's clock. A bufferevent's own
// bucket takes its Base's clock this way; give a group the clock of the
// Bases whose bufferevents join it, so that a test's clock drives both.
func WithClock(c clock.Clock) Option {
	return func(o *options) { o.clock = c }
}

func applyOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// timeOn reads c, or the system's clock, directly, when c is nil: every
// Allow and Consume of a bucket or group without WithClock reads it.
func timeOn(c clock.Clock) time.Time {
	if c == nil {
		return time.Now()
	}
	return c.Now()
}

// An alarm is a Wait's sleep: each setting arms a fresh one-shot timer
// whose firing is received on the channel the setting returns, so that a
// firing of an earlier setting, late after a Stop, cannot be taken for the
// current one.
type alarm struct {
	t clock.Timer
}

// at stops the previous timer, if any, and returns a channel that
// receives once the time of c (nil: the system's clock) reaches due. The
// delay is taken from c when the timer is armed, not when the caller read
// the time, and a due time already past fires at once: a clock that a
// test moves on in between (or a slow goroutine) does not make the wait a
// whole step late.
func (a *alarm) at(c clock.Clock, due time.Time) <-chan struct{} {
	c = clock.OrReal(c)
	d := due.Sub(c.Now())
	if d <= 0 {
		a.stop()
		fired := make(chan struct{}, 1)
		fired <- struct{}{}
		return fired
	}
	return a.arm(c, d)
}

// yield is at for a wait that only lets the goroutines ready to run go
// first: the runtime's shortest timer, whatever the clock, since it waits
// for the scheduler, not for time. (Not zero: a timer already due fires
// at once; under testing/synctest one nanosecond waits until every other
// goroutine in the bubble is blocked.)
func (a *alarm) yield() <-chan struct{} { return a.arm(clock.Real(), time.Nanosecond) }

// arm stops the previous timer, if any, and arms one on c for d.
func (a *alarm) arm(c clock.Clock, d time.Duration) <-chan struct{} {
	a.stop()
	fired := make(chan struct{}, 1)
	a.t = c.AfterFunc(d, func() { fired <- struct{}{} })
	return fired
}

// stop stops the current timer, if any.
func (a *alarm) stop() {
	if a.t != nil {
		a.t.Stop()
		a.t = nil
	}
}
