package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// What the reclaimer lets the process keep without reclaiming: idleBudget
// for the program itself and relayBudget per open relay (its two outputs
// at the backpressure mark, with its reads in flight).
const (
	idleBudget      = 8 << 20
	relayBudget     = 1 << 20
	reclaimInterval = time.Second
)

// reclaimer gives memory back to the system after a load has passed.
//
// Go returns freed memory only once a garbage collection has found it
// free, and a collection runs only as the program allocates (or every two
// minutes when it does not); the actor package's chunk pools (sync.Pool)
// keep what they hold through one more collection. So after a burst of
// connections an idle proxy kept its peak RSS for minutes. Once a second
// the reclaimer compares the memory the runtime holds from the system
// with what the open relays may need (idleBudget + relayBudget each); when
// it holds more than twice that and the number of open relays is not
// rising, it collects twice (the second collection drops what the pools
// kept) and returns the free pages (debug.FreeOSMemory). It does so again
// only once fewer relays are open than at the last reclaim, or the memory
// held has grown by what the open relays need since: memory something
// still uses is not collected over and over. A quiet proxy costs one
// metrics read a second.
type reclaimer struct {
	open    func() int64 // open relays now
	stop    chan struct{}
	wg      sync.WaitGroup
	samples []metrics.Sample

	last      int64  // open relays at the previous tick
	floor     uint64 // bytes held right after the last reclaim
	floorOpen int64  // open relays at the last reclaim
	runs      int    // reclaims done, for tests
}

func newReclaimer(open func() int64) *reclaimer {
	return &reclaimer{
		open: open,
		stop: make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
		},
	}
}

// startReclaimer starts a reclaimer's loop; close stops it.
func startReclaimer(open func() int64) *reclaimer {
	r := newReclaimer(open)
	r.wg.Go(r.loop)
	return r
}

func (r *reclaimer) loop() {
	t := time.NewTicker(reclaimInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

// held returns the bytes the runtime holds from the system and has not
// given back.
func (r *reclaimer) held() uint64 {
	metrics.Read(r.samples)
	return r.samples[0].Value.Uint64() - r.samples[1].Value.Uint64()
}

// tick reclaims if the runtime holds more than twice what the open relays
// need, their number is not rising, and the last reclaim is not what left
// that memory (see reclaimer). It reports whether it reclaimed.
func (r *reclaimer) tick() bool {
	open := max(r.open(), 0)
	rising := open > r.last
	r.last = open
	need := uint64(idleBudget + open*relayBudget)
	held := r.held()
	if rising || held <= 2*need || r.runs > 0 && open >= r.floorOpen && held <= r.floor+need {
		return false
	}
	runtime.GC()         // what the pools hold moves to their victim caches
	debug.FreeOSMemory() // collects again, dropping those, and releases the free pages
	r.floor, r.floorOpen = r.held(), open
	r.runs++
	return true
}

// close stops the reclaimer and waits for it.
func (r *reclaimer) close() {
	close(r.stop)
	r.wg.Wait()
}
