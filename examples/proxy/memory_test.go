package main

import (
	"runtime"
	"sync/atomic"
	"testing"
)

// burst allocates and touches n MiB, standing for the buffers of a load,
// and returns them; dropping the result ends the load.
func burst(n int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<20)
		for j := 0; j < len(bufs[i]); j += 4096 {
			bufs[i][j] = 1
		}
	}
	return bufs
}

// TestReclaimerGivesMemoryBack: after a load has passed, one tick gives
// what it left back to the system, and the next tick, with nothing more
// to give back, does not collect again.
func TestReclaimerGivesMemoryBack(t *testing.T) {
	var open atomic.Int64
	r := newReclaimer(open.Load)
	load := burst(64)
	runtime.KeepAlive(load)
	load = nil
	before := r.held()
	if before < 64<<20 {
		t.Fatalf("held %d bytes with a 64 MiB load just dropped", before)
	}
	if !r.tick() {
		t.Fatalf("no reclaim with %d MiB held and no relay open", before>>20)
	}
	if after := r.held(); after > before-48<<20 {
		t.Errorf("held %d MiB after the reclaim, %d MiB before: the load's memory was not given back", after>>20, before>>20)
	}
	if r.tick() {
		t.Error("reclaimed again with nothing more to give back")
	}
}

// TestReclaimerWaitsWhileRelaysOpen: memory the open relays may need is
// left alone, and nothing is reclaimed while their number is rising.
func TestReclaimerWaitsWhileRelaysOpen(t *testing.T) {
	var open atomic.Int64
	r := newReclaimer(open.Load)
	open.Store(200) // 200 relays may hold 200 MiB: a 64 MiB load is theirs
	load := burst(64)
	if r.tick() {
		t.Error("reclaimed while the open relays may need what is held")
	}
	runtime.KeepAlive(load)
	load = nil
	open.Store(0)
	r.tick() // the count fell: this one may reclaim
	load = burst(64)
	runtime.KeepAlive(load)
	load = nil
	open.Store(1)
	if r.tick() {
		t.Error("reclaimed while the number of open relays was rising")
	}
	if !r.tick() {
		t.Error("no reclaim once the count stopped rising")
	}
}

// TestReclaimerStops: close ends the loop (goleak checks it is gone).
func TestReclaimerStops(t *testing.T) {
	r := startReclaimer(func() int64 { return 0 })
	r.close()
}
