package actor_test

import (
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
)

// A pair caps each transfer at the receiver's read high watermark minus
// its input, as libevent's does, whatever the order of Enable and
// SetWatermark: b's read callback never sees more than 20 bytes (issue
// 13, item 10a). The Do after Enable lets b's reader start waiting for
// data with reading enabled and no watermark yet, which is the race.
func TestPairWatermarkAfterEnable(t *testing.T) {
	runs := 100
	if testing.Short() {
		runs = 20
	}
	for range runs {
		a, b := newPair(t, 0)
		var most atomic.Int64
		total := 0
		got := make(chan struct{}, 1)
		b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
			n := s.Input().Len()
			if int64(n) > most.Load() {
				most.Store(int64(n))
			}
			total += n
			s.Input().Drain(n)
			if total == 1000 {
				signal(got)
			}
		}})
		b.Enable(actor.Read)
		b.Do(func(*actor.Session) {})
		if err := b.SetWatermark(actor.Read, 0, 20); err != nil {
			t.Fatal(err)
		}
		a.Write(seq(1000))
		recv(t, got, "1000 bytes through the pair")
		if m := most.Load(); m > 20 {
			t.Fatalf("b's read callback saw %d bytes at once, over its read high watermark of 20", m)
		}
		a.Close()
		b.Close()
	}
}
