package actor_test

import (
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
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
		a, b := testbev.NewPair(t, 0)
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
				testkit.Signal(got)
			}
		}})
		b.Enable(actor.Read)
		b.Do(func(*actor.Session) {})
		if err := b.SetWatermark(actor.Read, 0, 20); err != nil {
			t.Fatal(err)
		}
		a.Write(testkit.Pattern(1000))
		testkit.Recv(t, got, "1000 bytes through the pair")
		if m := most.Load(); m > 20 {
			t.Fatalf("b's read callback saw %d bytes at once, over its read high watermark of 20", m)
		}
		a.Close()
		b.Close()
	}
}

// A pair's sender sees what its partner took: with b's read high
// watermark at 100 and a's write low watermark at 900, a.Write(1000) runs
// a's write callback once b has taken 100 bytes, its output then holding
// the 900 that b has not (issue 13, item 10b; libevent's pair does the
// same).
func TestPairSenderSeesPartnerTake(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	if err := b.SetWatermark(actor.Read, 0, 100); err != nil {
		t.Fatal(err)
	}
	if err := a.SetWatermark(actor.Write, 900, 0); err != nil {
		t.Fatal(err)
	}
	outs := make(chan int, 16)
	a.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		select {
		case outs <- s.Output().Len():
		default:
		}
	}})
	b.Enable(actor.Read) // no read callback: b keeps what it takes
	want := testkit.Pattern(1000)
	a.Write(want)
	if n := testkit.Recv(t, outs, "a's write callback at its low watermark"); n != 900 {
		t.Fatalf("a's write callback saw Output().Len() = %d, want 900 (b took 100)", n)
	}
	if n := b.InputLen(); n > 100 {
		t.Errorf("b's input holds %d bytes, over its read high watermark of 100", n)
	}
	// Now let b drain as it reads: everything arrives, in order.
	var got []byte
	all := make(chan struct{})
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		got = append(got, testkit.DrainAll(t, s.Input())...)
		if len(got) == len(want) {
			close(all)
		}
	}})
	b.Trigger(actor.Read, 0) // the 100 bytes already there
	testkit.Recv(t, all, "all 1000 bytes at b")
	if string(got) != string(want) {
		t.Fatalf("b received %d bytes, not the 1000 written in order", len(got))
	}
}
