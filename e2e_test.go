package bev_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

// The end-to-end suite composes every package through the public API only.
// Each scenario lives in its own e2e_*_test.go file, asserts the exact
// bytes delivered and ends with a leak check of its own (none of them runs
// in parallel); VerifyTestMain checks once more after all of them.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// closeAndCheck closes base (joining every bufferevent, listener and relay
// it owns) and then checks that no goroutine is left.
func closeAndCheck(t *testing.T, base *actor.Base) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- base.Close() }()
	if err := testkit.Recv(t, closed, "Base.Close"); err != nil {
		t.Errorf("Base.Close() = %v, want nil", err)
	}
	goleak.VerifyNone(t)
}

// relay joins two bufferevents the le-proxy way: each side's read
// callback moves its input into the other side's output without copying
// (WriteBuffer); an EOF on one side half-closes the other once what was
// moved is written, so EOF travels on; an error ends both. Transfers in
// this suite are bounded, so the relay needs no backpressure of its own.
//
// A goroutine owned by the relay waits until both directions have ended,
// then drains and closes both sides. The relay registers with the Base,
// whose Close calls the relay's Close: it closes both sides at once and
// waits for that goroutine.
type relay struct {
	base  *actor.Base
	sides [2]*actor.Bufferevent
	moved [2]atomic.Int64 // bytes read on side i and handed to the other
	eof   [2]atomic.Bool
	fail  atomic.Bool
	wake  chan struct{} // buffered(1): a side ended

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex // guards following
	cause error      // the first error event's cause
}

// newRelay starts relaying between a and b, which must have no callbacks
// of their own. Reading starts at once on both sides: bytes for a side
// still connecting wait in its output. It fails only when base is closed.
func newRelay(base *actor.Base, a, b *actor.Bufferevent) (*relay, error) {
	r := &relay{base: base, sides: [2]*actor.Bufferevent{a, b}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := base.Register(r); err != nil {
		r.cancel()
		return nil, err
	}
	for i, x := range r.sides {
		x.SetCallbacks(actor.Callbacks{
			Read:  func(s *actor.Session) { r.move(i, s) },
			Event: func(s *actor.Session, ev actor.Event, err error) { r.onEvent(i, s, ev, err) },
		})
	}
	for _, x := range r.sides {
		// Enable fails only on a side already stopped, which the relay
		// then sees through its Err or a failed WriteBuffer.
		x.Enable(actor.Read | actor.Write)
	}
	go r.run()
	return r, nil
}

// move hands side i's input to the other side's output.
func (r *relay) move(i int, s *actor.Session) {
	in := s.Input()
	n := in.Len()
	if n == 0 {
		return
	}
	if err := r.sides[1-i].WriteBuffer(in); err != nil {
		in.Drain(n) // the other side has stopped: nowhere to deliver
		return
	}
	r.moved[i].Add(int64(n))
}

func (r *relay) onEvent(i int, s *actor.Session, ev actor.Event, err error) {
	if ev&(actor.EOF|actor.Error) == 0 {
		return // Connected
	}
	r.move(i, s) // every byte read before the event arrives first
	if ev&actor.Error != 0 {
		r.mu.Lock()
		if r.cause == nil {
			r.cause = err
		}
		r.mu.Unlock()
		r.fail.Store(true)
	} else {
		r.eof[i].Store(true)
		r.sides[1-i].Flush(actor.Write, actor.Finished)
	}
	testkit.Signal(r.wake)
}

func (r *relay) run() {
	defer close(r.done)
	defer r.base.Unregister(r)
	for !r.eof[0].Load() || !r.eof[1].Load() {
		if r.fail.Load() {
			r.sides[0].Close()
			r.sides[1].Close()
			return
		}
		select {
		case <-r.wake:
		case <-r.ctx.Done():
			r.sides[0].Close()
			r.sides[1].Close()
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, testkit.WaitTime)
	defer cancel()
	r.sides[0].Drain(ctx)
	r.sides[1].Drain(ctx)
}

// Done returns a channel closed once the relay has closed both sides.
func (r *relay) Done() <-chan struct{} { return r.done }

// Err returns the cause of the first error event on either side, or nil.
func (r *relay) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

// Close closes both sides at once and waits for the relay's goroutine.
func (r *relay) Close() error {
	r.cancel()
	<-r.done
	return nil
}
