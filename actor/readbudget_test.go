package actor_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// A socket that goes quiet after a burst gives its share of the read
// budget back while it waits for more, so that connections idle after a
// download do not keep the budget from the busy ones: during a 4 MiB
// burst its reads grow past 64 KiB, holding a share, and once the burst is
// read and its reader waits, no share is held. Both readers are checked:
// the actor reading its socket itself, and the reader loop (which reads
// while the actor serves the In channel).
func TestQuietSocketGivesShareBack(t *testing.T) {
	for _, route := range []string{"actor", "reader loop"} {
		for _, nw := range []string{"tcp", "unix"} {
			t.Run(route+"/"+nw, func(t *testing.T) {
				if n := actor.ReadSharesHeld(); n != 0 {
					t.Fatalf("%d shares held before the test", n)
				}
				c, s := testconn.Pair(t, nw)
				b, err := actor.New(testbev.NewBase(t), s, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				const burst = 4 << 20
				var got atomic.Int64
				var shared atomic.Bool // the reader held a share during the burst
				done := make(chan struct{})
				took := func(n int) {
					if actor.ReadSharesHeld() > 0 { // this test's reader is the only one
						shared.Store(true)
					}
					if got.Add(int64(n)) == burst {
						close(done)
					}
				}
				if route == "actor" {
					b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
						n := s.Input().Len()
						s.Input().Drain(n)
						took(n)
					}})
					b.Enable(actor.Read)
				} else {
					in := b.In() // the actor serves the channel: the reader loop reads
					var consumer sync.WaitGroup
					consumer.Go(func() {
						for p := range in {
							if took(len(p)); got.Load() == burst {
								return
							}
						}
					})
					defer func() { b.Close(); consumer.Wait() }() // Close ends In
				}
				c.SetDeadline(time.Now().Add(testkit.WaitTime))
				if _, err := c.Write(make([]byte, burst)); err != nil {
					t.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(testkit.WaitTime):
					t.Fatalf("read %d of %d bytes", got.Load(), burst)
				}
				if loops := readerLoops(); (route == "reader loop") != (loops > 0) {
					t.Fatalf("%d reader loops running on the %s route", loops, route)
				}
				if !shared.Load() {
					t.Fatal("the reader never held a share of the budget during the burst")
				}
				deadline := time.Now().Add(testkit.WaitTime)
				for actor.ReadSharesHeld() != 0 {
					if time.Now().After(deadline) {
						t.Fatalf("%d shares still held by a reader waiting on a quiet socket", actor.ReadSharesHeld())
					}
					runtime.Gosched()
				}
			})
		}
	}
}
