package pipeline_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// Benchmarks of filter.go: throughput and CPU time per chunk through
// filters and chains over a pair.

// stream is a sender and a receiver over some arrangement of bufferevents:
// the benchmark writes chunks into send, and the receiver's read callback
// drains recv, counting bytes.
type stream struct {
	send, recv *actor.Bufferevent
	got        atomic.Int64
	sig        chan struct{} // buffered(1): got moved
}

// newStream builds the named arrangement over one pair (see
// BenchmarkThroughput). The caller closes base.
func newStream(tb testing.TB, base *actor.Base, name string) *stream {
	tb.Helper()
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		tb.Fatalf("NewPair = %v", err)
	}
	s := &stream{send: a, recv: b, sig: make(chan struct{}, 1)}
	filter := func(u *actor.Bufferevent, in, out pipeline.Stage) *actor.Bufferevent {
		f, err := pipeline.NewFilter(u, in, out, actor.CloseOnFree)
		if err != nil {
			tb.Fatalf("NewFilter = %v", err)
		}
		return f
	}
	chain := func(n int) pipeline.Stage {
		st := make([]pipeline.Stage, n)
		for i := range st {
			st[i] = pipeline.PassThrough()
		}
		return pipeline.Chain(st...)
	}
	var n int
	switch {
	case name == "pair":
	case name == "filter/nil":
		s.send = filter(a, nil, nil)
	case sscan(name, "out/chain=%d", &n):
		s.send = filter(a, nil, chain(n))
	case sscan(name, "both/chain=%d", &n):
		s.send = filter(a, nil, chain(n))
		s.recv = filter(b, chain(n), nil)
	case sscan(name, "stack=%d", &n):
		for range n {
			s.send = filter(s.send, nil, pipeline.PassThrough())
		}
	default:
		tb.Fatalf("unknown arrangement %q", name)
	}
	s.recv.SetCallbacks(actor.Callbacks{Read: func(ss *actor.Session) {
		n := ss.Input().Len()
		ss.Input().Drain(n)
		s.got.Add(int64(n))
		testkit.Signal(s.sig)
	}})
	s.recv.Enable(actor.Read)
	return s
}

func sscan(s, format string, n *int) bool {
	_, err := fmt.Sscanf(s, format, n)
	return err == nil
}

// pump writes one chunk, keeping at most window bytes in flight, and
// returns the bytes sent so far.
func (s *stream) pump(chunk []byte, sent int64, window int64) int64 {
	for sent-s.got.Load() >= window {
		<-s.sig
	}
	s.send.Write(chunk)
	return sent + int64(len(chunk))
}

// settle waits until everything sent has been received.
func (s *stream) settle(sent int64) {
	for s.got.Load() < sent {
		<-s.sig
	}
}

var arrangements = []string{"pair", "filter/nil", "out/chain=1", "out/chain=4", "both/chain=1", "both/chain=4", "stack=1", "stack=4"}

// BenchmarkThroughput streams 16 KiB chunks from one end of a pair to the
// other through each arrangement: the bare pair (the baseline), a filter
// with nil stages, a sending filter whose output stage is a Chain of 1 or
// 4 pass-through stages, filters on both ends with such chains, and 1 or
// 4 stacked pass-through filters on the sending end.
func BenchmarkThroughput(b *testing.B) {
	chunk := testkit.Pattern(benchChunk)
	for _, name := range arrangements {
		b.Run(name, func(b *testing.B) {
			base := actor.NewBase()
			defer base.Close()
			s := newStream(b, base, name)
			b.ReportAllocs()
			b.SetBytes(benchChunk)
			var sent int64
			for b.Loop() {
				sent = s.pump(chunk, sent, 16*benchChunk)
			}
			s.settle(sent)
		})
	}
}

// Steady state allocates nothing per chunk through a pass-through chain,
// nor through the bare pair (sync.Pool keeps chunks; under the race
// detector it drops some on purpose, so the pin is skipped there).
func TestThroughputAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	chunk := testkit.Pattern(benchChunk)
	for _, name := range []string{"pair", "out/chain=4", "both/chain=4", "stack=4"} {
		t.Run(name, func(t *testing.T) {
			base := actor.NewBase()
			defer base.Close()
			s := newStream(t, base, name)
			var sent int64
			for range 200 { // warm the pools and buffers
				sent = s.pump(chunk, sent, 4*benchChunk)
			}
			s.settle(sent)
			allocs := testing.AllocsPerRun(500, func() {
				sent = s.pump(chunk, sent, 4*benchChunk)
			})
			s.settle(sent)
			if allocs != 0 {
				t.Errorf("%v allocations per 16 KiB chunk, want 0", allocs)
			}
		})
	}
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
