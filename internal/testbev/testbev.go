// Package testbev holds the helpers bev's tests share that need package
// actor. Package actor's own internal tests (package actor, not
// actor_test) cannot import it, since it imports actor; what they may
// share lives in internal/testkit, which imports no bev package.
package testbev

import (
	"testing"

	"github.com/bevgo/bev/actor"
)

// NewBase returns a new Base that is closed, joining everything it owns,
// when the test ends. A Close that returns an error then fails the test
// (with t.Errorf); closing the Base earlier is fine, and the later Close
// returns the same result.
func NewBase(t testing.TB) *actor.Base {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() {
		if err := base.Close(); err != nil {
			t.Errorf("Base.Close() = %v, want nil", err)
		}
	})
	return base
}

// NewPair returns the two ends of a pair made with opts, owned by a Base
// closed when the test ends (see NewBase). A failure to make the pair
// fails the test with t.Fatalf.
func NewPair(t testing.TB, opts actor.Option) (a, b *actor.Bufferevent) {
	t.Helper()
	a, b, err := actor.NewPair(NewBase(t), opts)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	return a, b
}

// Echo makes b an echo server's end: its callbacks send every byte it
// reads back out; an error closes it, and after the peer's EOF it closes
// once everything read has been written back, so the peer sees its whole
// echo and then EOF. events, unless nil, is called first with every event
// (on b's callback goroutine, so it must not block). Echo enables reading
// and writing and returns Enable's error.
func Echo(b *actor.Bufferevent, events func(ev actor.Event, err error)) error {
	closing := false // touched only by b's callbacks, which run one at a time
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
		Write: func(s *actor.Session) {
			if closing && s.Output().Len() == 0 {
				s.Close()
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if events != nil {
				events(ev, err)
			}
			switch {
			case ev&actor.Error != 0 || ev&actor.EOF != 0 && s.Output().Len() == 0:
				s.Close()
			case ev&actor.EOF != 0:
				closing = true
			}
		},
	})
	return b.Enable(actor.Read | actor.Write)
}
