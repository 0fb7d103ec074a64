package actor

import (
	"testing"
	"unsafe"

	"github.com/bevgo/bev/internal/testkit"
)

// Tests of actor.go: the size every connection holds for its whole life.

// Every connection holds a Bufferevent for its whole life, idle or not;
// the allocator rounds it up to its size class, so crossing 1 KiB costs
// 128 bytes more per connection (docs/benchmarks.md, idle memory). Adding
// a field may need the small ones regrouped to avoid padding.
func TestBuffereventSize(t *testing.T) {
	if n := unsafe.Sizeof(Bufferevent{}); n > 1024 {
		t.Errorf("Bufferevent is %d bytes, over the 1 KiB allocation class", n)
	}
}

// Every connection posted to holds its mailbox's first block of 2 x
// mailHalf messages (mailbox.grow) for its whole life: at 80 bytes a
// message that block, with the allocator's 8-byte header for objects
// over 512 bytes, is a 704-byte allocation; at 88 it is one of 768.
func TestMessageSize(t *testing.T) {
	if n := unsafe.Sizeof(message{}); n > 80 {
		t.Errorf("message is %d bytes, over 80: the mailbox's first block grows a size class", n)
	}
}

// A bufferevent makes the channel that hands a deferred-callback turn
// back only when it first asks for a turn: one that never defers a
// callback, as most do not, holds none.
func TestTurnMadeOnFirstDefer(t *testing.T) {
	base := NewBase()
	defer base.Close()
	for _, opts := range []Option{0, DeferCallbacks} {
		a, b, err := NewPair(base, opts)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan struct{}, 1)
		b.SetCallbacks(Callbacks{Read: func(s *Session) {
			s.Input().Drain(s.Input().Len())
			testkit.Signal(got)
		}})
		b.Enable(Read)
		if err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		testkit.Recv(t, got, "the read callback")
		// The callback ran after the actor made the channel, if it did.
		if made := b.turn != nil; made != (opts == DeferCallbacks) {
			t.Errorf("opts %v: turn made %v", opts, made)
		}
		a.Free()
		b.Free()
	}
}
