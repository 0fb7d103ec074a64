// Package deadline is net.Pipe's deadline, shared by bev's in-memory
// transports: a channel that is closed when the deadline passes and
// replaced when the deadline moves, so a blocked Read or Write can select
// on it.
package deadline

import (
	"sync"
	"time"
)

// Deadline is one direction's deadline. The zero value is not usable;
// make one with New. It is safe for concurrent use.
type Deadline struct {
	mu     sync.Mutex // guards following
	t      time.Time
	timer  *time.Timer
	cancel chan struct{}
}

// New returns a Deadline that is not set.
func New() *Deadline { return &Deadline{cancel: make(chan struct{})} }

// Set moves the deadline to t: the zero time clears it, a time in the past
// expires it at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait until its function closed cancel
	}
	d.timer = nil
	d.t = t
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// Stop releases the timer of a deadline that has not passed yet.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

// Wait returns the channel that is closed when the deadline passes.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// When returns the deadline, the zero time when none is set.
func (d *Deadline) When() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
