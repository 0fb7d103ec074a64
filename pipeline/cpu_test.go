package pipeline_test

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPUPerChunk reports process CPU time per 16 KiB chunk for each
// arrangement (BENCH_CPU=1 to run): steadier than wall-clock throughput
// on a loaded machine.
func TestCPUPerChunk(t *testing.T) {
	if os.Getenv("BENCH_CPU") == "" {
		t.Skip("set BENCH_CPU=1 to measure")
	}
	chunk := pattern(benchChunk)
	const n = 20000
	for round := range 3 {
		for _, name := range arrangements {
			base := actor.NewBase()
			s := newStream(t, base, name)
			var sent int64
			for range 1000 {
				sent = s.pump(chunk, sent, 16*benchChunk)
			}
			s.settle(sent)
			c0, w0 := cpuTime(), time.Now()
			for range n {
				sent = s.pump(chunk, sent, 16*benchChunk)
			}
			s.settle(sent)
			c1, w1 := cpuTime(), time.Now()
			t.Logf("round %d %-14s cpu %6.2f us/chunk  wall %6.2f us/chunk", round, name,
				float64(c1-c0)/float64(time.Microsecond)/n, float64(w1.Sub(w0))/float64(time.Microsecond)/n)
			base.Close()
		}
	}
}
