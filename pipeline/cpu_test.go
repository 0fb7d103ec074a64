package pipeline_test

import (
	"compress/flate"
	"io"
	"os"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
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
	const n = 20000
	for round := range 3 {
		for _, name := range arrangements {
			wall, cpu := timeStream(t, name, 1000, n)
			t.Logf("round %d %-14s cpu %6.2f us/chunk  wall %6.2f us/chunk", round, name,
				float64(cpu)/float64(time.Microsecond)/n, float64(wall)/float64(time.Microsecond)/n)
		}
	}
}

// timeStream streams warm chunks through a fresh arrangement, then n more,
// and returns the wall-clock and process CPU time the n took.
func timeStream(t *testing.T, name string, warm, n int) (wall, cpu time.Duration) {
	base := actor.NewBase()
	defer base.Close()
	s := newStream(t, base, name)
	chunk := testkit.Pattern(benchChunk)
	var sent int64
	for range warm {
		sent = s.pump(chunk, sent, 16*benchChunk)
	}
	s.settle(sent)
	c0, w0 := cpuTime(), time.Now()
	for range n {
		sent = s.pump(chunk, sent, 16*benchChunk)
	}
	s.settle(sent)
	return time.Since(w0), cpuTime() - c0
}

// TestCPUDeflate reports process CPU time per 16 KiB chunk of text for
// compress/flate writing to io.Discard, the deflate stage alone, and the
// stage in a filter over a pair (BENCH_CPU=1 to run).
func TestCPUDeflate(t *testing.T) {
	if os.Getenv("BENCH_CPU") == "" {
		t.Skip("set BENCH_CPU=1 to measure")
	}
	data := sample(1 << 20)
	const n = 1000
	next := func(i int) []byte {
		off := (i * benchChunk) % len(data)
		return data[off : off+benchChunk]
	}
	for round := range 3 {
		for _, level := range []int{flate.BestSpeed, flate.DefaultCompression} {
			w, _ := flate.NewWriter(io.Discard, level)
			c0 := cpuTime()
			for i := range n {
				w.Write(next(i))
			}
			flateCPU := cpuTime() - c0

			st, _ := pipeline.Compress(pipeline.FormatFlate, level)
			var src, dst actor.Buffer
			c0 = cpuTime()
			for i := range n {
				src.Write(next(i))
				st.Process(&dst, &src, -1, actor.Normal)
				dst.Reset()
			}
			stageCPU := cpuTime() - c0

			base := actor.NewBase()
			a, r, _ := actor.NewPair(base, 0)
			st, _ = pipeline.Compress(pipeline.FormatFlate, level)
			taken := &takenStage{Stage: st, sig: make(chan struct{}, 1)}
			f, _ := pipeline.NewFilter(a, nil, taken, actor.CloseOnFree)
			r.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { s.Input().Drain(s.Input().Len()) }})
			r.Enable(actor.Read)
			c0 = cpuTime()
			var sent int64
			for i := range n {
				for sent-taken.n.Load() >= 4*benchChunk {
					<-taken.sig
				}
				f.Write(next(i))
				sent += benchChunk
			}
			for taken.n.Load() < sent {
				<-taken.sig
			}
			filterCPU := cpuTime() - c0
			base.Close()
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / n }
			t.Logf("round %d level %2d: flate->Discard %7.1f us/chunk, stage %7.1f (%.2fx flate's throughput), filter over a pair %7.1f (%.2fx)",
				round, level, us(flateCPU), us(stageCPU), float64(flateCPU)/float64(stageCPU), us(filterCPU), float64(flateCPU)/float64(filterCPU))
		}
	}
}

// TestThroughputRatio reports each filter arrangement's throughput as a
// ratio to the bare pair's (BENCH_RATIO=rounds to run, 30 is a good
// number): each round times 5 000 chunks of the arrangement right after
// 5 000 through a fresh pair, and the test reports the median of the
// rounds' ratios, of wall-clock and of process CPU time. On a shared
// machine whose speed swings from one second to the next, adjacent short
// runs compare far better than BenchmarkThroughput's runs of a second
// each, one arrangement after the other (whose ratios to the pair spread
// over 0.5 to 1.2 there).
func TestThroughputRatio(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("BENCH_RATIO"))
	if rounds <= 0 {
		t.Skip("set BENCH_RATIO=rounds to measure")
	}
	names := []string{"out/chain=1", "out/chain=4", "both/chain=1", "stack=4"}
	const n = 5000
	measure := func(name string) (wall, cpu time.Duration) { return timeStream(t, name, 300, n) }
	wall := map[string][]float64{}
	cpu := map[string][]float64{}
	var pair []float64
	for range rounds {
		for _, name := range names {
			pw, pc := measure("pair")
			xw, xc := measure(name)
			wall[name] = append(wall[name], float64(pw)/float64(xw))
			cpu[name] = append(cpu[name], float64(pc)/float64(xc))
			pair = append(pair, float64(pw)/float64(time.Microsecond)/n)
		}
	}
	median := func(v []float64) float64 {
		sort.Float64s(v)
		return v[len(v)/2]
	}
	t.Logf("pair: %.2f us/chunk (median wall)", median(pair))
	for _, name := range names {
		t.Logf("%-13s / pair: wall %.3f  cpu %.3f", name, median(wall[name]), median(cpu[name]))
	}
}
