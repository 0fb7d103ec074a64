package actor_test

import (
	"fmt"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of mailbox.go: a post never waits for the actor, so callbacks may
// call each other's bufferevents.

// Two bufferevents whose callbacks call each other's methods relay many
// thousands of messages both ways without deadlock (le-proxy's shape).
func TestRelayNoDeadlock(t *testing.T) {
	base := testbev.NewBase(t)
	c1, s1, _ := actor.NewPair(base, 0)
	s2, c2, _ := actor.NewPair(base, 0)
	relay := func(from, to *actor.Bufferevent) {
		from.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
			var buf actor.Buffer
			s.ReadBuffer(&buf)
			to.WriteBuffer(&buf)
			to.SetWatermark(actor.Write, 0, 1<<16)
			s.Disable(actor.Read)
			s.Enable(actor.Read)
			to.Enable(actor.Read)
		}})
		from.Enable(actor.Read)
	}
	relay(s1, s2)
	relay(s2, s1)
	const rounds = 5000
	done := make(chan struct{})
	// c1 sends a byte, c2 echoes it, c1 counts and sends the next.
	count := 0
	c2.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { s.WriteBuffer(s.Input()) }})
	c1.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		count += s.Input().Len()
		s.Input().Drain(s.Input().Len())
		if count == rounds {
			close(done)
			return
		}
		s.Write([]byte{1})
	}})
	c1.Enable(actor.Read)
	c2.Enable(actor.Read)
	c1.Write([]byte{1})
	testkit.Recv(t, done, fmt.Sprintf("%d round trips", rounds))
}
