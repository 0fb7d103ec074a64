package redisgroup

import (
	"math"
	"testing"
)

// TestSharesAddUpToOne folds the ticks of two processes of one group as
// their stores do: A alone for one tick (granted all the tick held), then
// A with one member and B with two for twenty ticks (a third and two
// thirds). Their shares, the Local policy's basis during an outage, must
// add up to at most one whatever tick B joined in. A's share used to
// remember its tick alone while B's started at its first tick's share:
// after twenty ticks the two added up to 1.0077, and two busy processes
// fell back to 6021 B per tick of a 6000 B budget (TestOutageLocalBound,
// under load, when B's first lease came a tick after A's).
func TestSharesAddUpToOne(t *testing.T) {
	a, b := Store{last: -1}, Store{last: -1}
	// fold is the lease of tick k, which reports the share of tick k-1.
	fold := func(s *Store, k int64, share float64) {
		m := int64(share * 1e6)
		s.foldLocked(result{tick: k, shareTick: k - 1, share: [2]int64{m, m}})
	}
	fold(&a, 0, 0) // A's first lease: nothing to fold
	fold(&a, 1, 1) // tick 0: A alone
	fold(&b, 1, 0) // B's first lease
	for k := int64(2); k <= 21; k++ {
		fold(&a, k, 1.0/3)
		fold(&b, k, 2.0/3)
		if sum := a.share[0] + b.share[0]; sum > 1 {
			t.Fatalf("%d ticks after B joined: shares %.4f + %.4f = %.4f, over one", k-1, a.share[0], b.share[0], sum)
		}
		if sum := a.prev[0] + b.prev[0]; sum > 1 {
			t.Fatalf("%d ticks after B joined: shares a tick before %.4f + %.4f = %.4f, over one", k-1, a.prev[0], b.prev[0], sum)
		}
	}
	// Still each process's share: the moving average forgets A's tick
	// alone and B's ticks before it joined alike.
	if a.share[0] < 0.33 || a.share[0] > 0.35 || b.share[0] < 0.64 || b.share[0] > 2.0/3 {
		t.Errorf("shares after twenty ticks together: A %.4f, B %.4f; want about a third and two thirds", a.share[0], b.share[0])
	}
}

// TestFoldMissedTicks: a lease after ticks the process missed folds each
// of them as a tick that granted it nothing, and the share the script
// reports in the tick it reports it for, in one step however many ticks
// passed.
func TestFoldMissedTicks(t *testing.T) {
	s := Store{last: -1}
	s.foldLocked(result{tick: 10, shareTick: -1, share: [2]int64{-1, -1}})
	s.foldLocked(result{tick: 11, shareTick: 10, share: [2]int64{1e6, 1e6}})
	if s.share[0] != 0.2 || s.prev[0] != 0 {
		t.Fatalf("after one tick of all: share %v, prev %v; want 0.2, 0", s.share[0], s.prev[0])
	}
	// Tick 11's share (half) reported, then ticks 12 to 14 missed.
	s.foldLocked(result{tick: 15, shareTick: 11, share: [2]int64{5e5, 5e5}})
	want := (0.8*0.2 + 0.2*0.5) * 0.8 * 0.8 * 0.8
	if math.Abs(s.share[0]-want) > 1e-12 || math.Abs(s.prev[0]-want/0.8) > 1e-12 {
		t.Errorf("after three missed ticks: share %v, prev %v; want %v, %v", s.share[0], s.prev[0], want, want/0.8)
	}
	// A thousand ticks later, unreported: next to nothing, computed at
	// once.
	s.foldLocked(result{tick: 1015, shareTick: -1})
	if s.share[0] > 1e-90 || s.share[0] < 0 || s.last != 1015 {
		t.Errorf("after a thousand missed ticks: share %v, last %d", s.share[0], s.last)
	}
}
