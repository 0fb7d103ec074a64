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
