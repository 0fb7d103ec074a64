package actor_test

import (
	"errors"
	"io"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of base.go: a zero Base, and the dispatcher's priorities.

// A zero Base refuses to own anything and does not panic on Close.
func TestZeroBase(t *testing.T) {
	var base actor.Base
	if err := base.Close(); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("zero Base.Close() = %v, want ErrInvalid", err)
	}
	if err := base.Register(io.NopCloser(nil)); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("zero Base.Register() = %v, want ErrInvalid", err)
	}
	base.Unregister(io.NopCloser(nil))
	if b, err := actor.New(&base, nil, 0); !errors.Is(err, actor.ErrInvalid) || b != nil {
		t.Errorf("New(zero Base) = %v, %v, want nil, ErrInvalid", b, err)
	}
	if base.Clock() == nil || base.Priorities() != 1 {
		t.Errorf("zero Base: Clock() = %v, Priorities() = %d, want the real clock and 1", base.Clock(), base.Priorities())
	}
}

// Deferred callbacks run on the Base's dispatcher highest priority first.
func TestDeferredPriorities(t *testing.T) {
	base, err := actor.NewBaseConfig(actor.BaseConfig{Priorities: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	mk := func(pri int) *actor.Bufferevent {
		b, err := actor.New(base, nil, actor.DeferCallbacks)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetPriority(pri); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := mk(1).Priority(); got != 1 {
		t.Errorf("Priority() = %d, want 1", got)
	}
	blocker, low, high := mk(0), mk(2), mk(0)
	release := make(chan struct{})
	running := make(chan struct{})
	order := make(chan string, 2)
	blocker.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) {
		close(running)
		<-release
	}})
	low.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { order <- "low" }})
	high.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { order <- "high" }})
	blocker.TriggerEvent(actor.EOF, 0)
	testkit.Recv(t, running, "blocker's turn")
	// While the dispatcher is busy with blocker, queue low, then high.
	low.TriggerEvent(actor.EOF, 0)
	waitQueued(t, low)
	high.TriggerEvent(actor.EOF, 0)
	waitQueued(t, high)
	close(release)
	if first, second := testkit.Recv(t, order, "first"), testkit.Recv(t, order, "second"); first != "high" || second != "low" {
		t.Errorf("deferred callbacks ran %s, %s; want high, low", first, second)
	}
}

// waitQueued returns once b's actor has handled everything posted so far
// and finished that step, so its deferred callback is queued on the
// dispatcher. One Do is not enough: it may run in the same batch of
// messages as the trigger, before the step that queues the callback; a
// second Do, posted after the first returned, is handled in a later batch.
func waitQueued(t *testing.T, b *actor.Bufferevent) {
	t.Helper()
	for range 2 {
		if err := b.Do(func(*actor.Session) {}); err != nil {
			t.Fatal(err)
		}
	}
}

// A Base closes and joins every bufferevent it owns, including those made
// while its Close runs: a constructor racing Close either fails with
// ErrClosed or returns a bufferevent that Close has stopped by the time
// it returns (nothing is left running, which the package's leak check
// confirms).
func TestBaseCloseRacesConstructors(t *testing.T) {
	for round := range 50 {
		base := actor.NewBase()
		made := make(chan []*actor.Bufferevent, 1)
		failed := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			var bevs []*actor.Bufferevent
			defer func() { made <- bevs }()
			for i := range 10000 {
				if i == 1 {
					close(started)
				}
				var err error
				if i%2 == 0 {
					var a, b *actor.Bufferevent
					if a, b, err = actor.NewPair(base, 0); err == nil {
						bevs = append(bevs, a, b)
					}
				} else {
					var b *actor.Bufferevent
					if b, err = actor.New(base, nil, 0); err == nil {
						bevs = append(bevs, b)
					}
				}
				if err != nil {
					failed <- err
					return
				}
			}
			failed <- nil
		}()
		testkit.Recv(t, started, "the constructors to start")
		if err := base.Close(); err != nil {
			t.Fatalf("round %d: Base.Close() = %v", round, err)
		}
		err := testkit.Recv(t, failed, "the constructors to fail")
		bevs := testkit.Recv(t, made, "the bufferevents made")
		if !errors.Is(err, actor.ErrClosed) {
			t.Fatalf("round %d: a constructor after Base.Close = %v, want ErrClosed", round, err)
		}
		for _, b := range bevs {
			select {
			case <-b.Done():
			default:
				// Made before the constructor saw the Base closed:
				// it must have been stopped by Close, which has returned.
				t.Fatalf("round %d: a bufferevent of the closed Base still runs", round)
			}
		}
	}
}
