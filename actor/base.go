package actor

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/bevgo/bev/clock"
)

// Clock is the time source of a Base: what read and write timeouts, a
// drain's linger and a bufferevent's own rate limit are measured with,
// and, through the context a dial or a transport's handshake is given
// (clock.FromContext), the bounds they set themselves (the TLS handshake
// timeouts of packages conn/tlsconn and pipeline). The
// zero Base uses the real clock; tests may inject their own, or run under
// testing/synctest, whose bubble makes the real clock virtual.
//
// A bufferevent's timers are func timers: when one fires it posts to the
// bufferevent's mailbox, so that a timer wakes the actor as any message
// does (a socket's actor waiting in its own read included). The actor
// checks Now against the time it armed the timer for and ignores a firing
// that is early for the current arming (see [clock.Clock]).
type Clock = clock.Clock

// Timer is a timer made by Clock.AfterFunc (see [clock.Timer]).
type Timer = clock.Timer

// BaseConfig configures a Base. The zero value means the defaults.
type BaseConfig struct {
	// Clock measures timeouts, lingers and the bufferevents' own rate
	// limits. Nil means the real clock.
	Clock Clock
	// Priorities is the number of deferred-callback priorities, 0 (the
	// highest) to Priorities-1. Zero means 1, as libevent's event_base.
	Priorities int
}

// Base is libevent's event_base as a supervisor. It owns the bufferevents
// made with it and whatever else registers with it (listeners, for
// example), runs deferred callbacks in priority order on its dispatcher,
// and carries the clock. Close closes and joins everything it owns.
//
// A Base is safe for concurrent use. A nil *Base is valid wherever a Base
// is taken: bufferevents then have no supervisor, use the real clock, and
// run their deferred callbacks on their own actor after the current step.
// A zero Base (not made by NewBase or NewBaseConfig) is not: Register and
// Close fail with an error wrapping ErrInvalid, so New refuses it, and its
// getters give a nil Base's answers.
type Base struct {
	clock Clock
	npri  int

	mu      sync.Mutex // guards following
	owned   map[io.Closer]struct{}
	pending [][]*Bufferevent // deferred callbacks waiting, by priority
	closed  bool

	wake     chan struct{} // buffered(1): pending has work
	quit     chan struct{} // closed by Close after the owned are closed
	dispDone chan struct{} // closed when the dispatcher has returned

	closeOnce sync.Once
	closeErr  error
}

// NewBase returns a Base with the default configuration.
func NewBase() *Base {
	b, _ := NewBaseConfig(BaseConfig{})
	return b
}

// NewBaseConfig returns a Base configured by cfg. It fails with an error
// wrapping ErrInvalid when cfg.Priorities is negative.
func NewBaseConfig(cfg BaseConfig) (*Base, error) {
	if cfg.Priorities < 0 {
		return nil, fmt.Errorf("%w: %d priorities", ErrInvalid, cfg.Priorities)
	}
	if cfg.Priorities == 0 {
		cfg.Priorities = 1
	}
	b := &Base{
		clock:    clock.OrReal(cfg.Clock),
		npri:     cfg.Priorities,
		owned:    make(map[io.Closer]struct{}),
		pending:  make([][]*Bufferevent, cfg.Priorities),
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		dispDone: make(chan struct{}),
	}
	go b.dispatch()
	return b, nil
}

// Clock returns the Base's clock; the real clock for a nil Base.
func (b *Base) Clock() Clock {
	if b == nil {
		return clock.Real()
	}
	return clock.OrReal(b.clock)
}

// Priorities returns the number of deferred-callback priorities (1 for a
// nil Base).
func (b *Base) Priorities() int {
	if b == nil || b.npri == 0 {
		return 1
	}
	return b.npri
}

// Register makes c owned by the Base: the Base's Close will close it. It
// fails with an error wrapping ErrClosed when the Base is closed, and then
// does not close c, and with one wrapping ErrInvalid for a zero Base.
// Bufferevents register themselves, and package conn its listeners; a
// program may register anything else it wants closed with the Base (a
// relay of two bufferevents, say). A closer that finishes on its own
// calls Unregister.
func (b *Base) Register(c io.Closer) error {
	if b == nil {
		return nil
	}
	if b.zero() {
		return errZero
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("base: %w", ErrClosed)
	}
	b.owned[c] = struct{}{}
	return nil
}

// Unregister forgets c. It is a no-op for a closer the Base does not own.
func (b *Base) Unregister(c io.Closer) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.owned, c)
	b.mu.Unlock()
}

// Close closes everything the Base owns, concurrently, waits until all of
// it has returned (every bufferevent's goroutines joined), stops the
// dispatcher, and returns the errors joined (transport close errors,
// typically nil), or an error wrapping ErrInvalid for a zero Base. Later calls return the first call's result; Close is safe
// to call from any goroutine but not from a callback of a bufferevent the
// Base owns (that would wait for itself; use Session.Close there).
func (b *Base) Close() error {
	if b == nil {
		return nil
	}
	if b.zero() {
		return errZero
	}
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		owned := make([]io.Closer, 0, len(b.owned))
		for c := range b.owned {
			owned = append(owned, c)
		}
		b.mu.Unlock()

		errs := make([]error, len(owned))
		var wg sync.WaitGroup
		for i, c := range owned {
			wg.Go(func() { errs[i] = c.Close() })
		}
		wg.Wait()
		close(b.quit)
		<-b.dispDone
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}

// zero reports whether b is a zero Base, not made by NewBase.
func (b *Base) zero() bool { return b.quit == nil }

// schedule queues bev for a deferred-callback turn at its priority.
func (b *Base) schedule(bev *Bufferevent, pri int) {
	b.mu.Lock()
	b.pending[pri] = append(b.pending[pri], bev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// next takes the first bufferevent waiting for a deferred-callback turn,
// from the most urgent priority that has one, or returns nil.
func (b *Base) next() *Bufferevent {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, q := range b.pending {
		if len(q) > 0 {
			bev := q[0]
			copy(q, q[1:])
			q[len(q)-1] = nil
			b.pending[i] = q[:len(q)-1]
			return bev
		}
	}
	return nil
}

// dispatch hands out deferred-callback turns, highest priority first, one
// bufferevent at a time, as libevent's loop runs its deferred queue. The
// callbacks themselves run on each bufferevent's own actor goroutine (it
// owns the buffers); the dispatcher only orders them.
func (b *Base) dispatch() {
	defer close(b.dispDone)
	for {
		bev := b.next()
		if bev == nil {
			select {
			case <-b.wake:
				continue
			case <-b.quit:
				return
			}
		}
		// The turn goes through the mailbox, so that an actor waiting
		// in its own socket's read is woken for it as for any message.
		if !bev.mail.post(message{kind: msgTurn}) {
			continue // it has stopped
		}
		select {
		case <-bev.turn: // the actor hands the turn back
		case <-bev.done:
		}
	}
}
