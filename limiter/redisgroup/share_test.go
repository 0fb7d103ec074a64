package redisgroup

import "testing"

// TestSharesAddUpToOne folds the ticks of two processes of one group as
// their stores do: A alone for one tick (granted all the tick held), then
// A with one member and B with two for twenty ticks (a third and two
// thirds). Their shares, the Local policy's leases during an outage, must
// add up to at most one whatever tick B joined in. A's share used to
// remember its tick alone while B's started at its first tick's share:
// after twenty ticks the two added up to 1.0077, and two busy processes
// fell back to 6021 B per tick of a 6000 B budget (TestOutageLocalBound,
// under load, when B's first lease came a tick after A's).
func TestSharesAddUpToOne(t *testing.T) {
	const held = 6000
	var a, b Store
	fold := func(s *Store, granted int64) {
		s.granted, s.start = [2]int64{granted, granted}, [2]int64{held, held}
		s.foldShareLocked()
	}
	fold(&a, held)
	for k := 1; k <= 20; k++ {
		fold(&a, held/3)
		fold(&b, 2*held/3)
		if sum := a.share[0] + b.share[0]; sum > 1 {
			t.Fatalf("%d ticks after B joined: shares %.4f + %.4f = %.4f, over one", k, a.share[0], b.share[0], sum)
		}
	}
	// Still each process's share: the moving average forgets A's tick
	// alone and B's ticks before it joined alike.
	if a.share[0] < 0.33 || a.share[0] > 0.35 || b.share[0] < 0.64 || b.share[0] > 2.0/3 {
		t.Errorf("shares after twenty ticks together: A %.4f, B %.4f; want about a third and two thirds", a.share[0], b.share[0])
	}
}
