package pipeline_test

import (
	"compress/flate"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// Benchmarks of deflate.go's compressor.

// BenchmarkDeflate compares the deflate stage with compress/flate writing
// to io.Discard at the same level, on 16 KiB chunks of text.
func BenchmarkDeflate(b *testing.B) {
	data := sample(1 << 20)
	for _, level := range []int{flate.BestSpeed, flate.DefaultCompression} {
		b.Run(fmt.Sprintf("level=%d/flate-discard", level), func(b *testing.B) {
			w, err := flate.NewWriter(io.Discard, level)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(benchChunk)
			off := 0
			for b.Loop() {
				w.Write(data[off : off+benchChunk])
				off = (off + benchChunk) % len(data)
			}
		})
		b.Run(fmt.Sprintf("level=%d/stage", level), func(b *testing.B) {
			st, err := pipeline.Compress(pipeline.FormatFlate, level)
			if err != nil {
				b.Fatal(err)
			}
			var src, dst actor.Buffer
			b.ReportAllocs()
			b.SetBytes(benchChunk)
			off := 0
			for b.Loop() {
				src.Write(data[off : off+benchChunk])
				st.Process(&dst, &src, -1, actor.Normal)
				dst.Reset()
				off = (off + benchChunk) % len(data)
			}
		})
		b.Run(fmt.Sprintf("level=%d/filter", level), func(b *testing.B) {
			base := actor.NewBase()
			defer base.Close()
			a, r, err := actor.NewPair(base, 0)
			if err != nil {
				b.Fatal(err)
			}
			st, err := pipeline.Compress(pipeline.FormatFlate, level)
			if err != nil {
				b.Fatal(err)
			}
			taken := &takenStage{Stage: st, sig: make(chan struct{}, 1)}
			f, err := pipeline.NewFilter(a, nil, taken, actor.CloseOnFree)
			if err != nil {
				b.Fatal(err)
			}
			r.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { s.Input().Drain(s.Input().Len()) }})
			r.Enable(actor.Read)
			b.ReportAllocs()
			b.SetBytes(benchChunk)
			off := 0
			var sent int64
			for b.Loop() {
				for sent-taken.n.Load() >= 4*benchChunk {
					<-taken.sig
				}
				f.Write(data[off : off+benchChunk])
				sent += benchChunk
				off = (off + benchChunk) % len(data)
			}
			for taken.n.Load() < sent {
				<-taken.sig
			}
		})
	}
}

// takenStage counts the bytes its stage consumed, for flow control.
type takenStage struct {
	pipeline.Stage
	n   atomic.Int64
	sig chan struct{} // buffered(1)
}

func (t *takenStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	before := src.Len()
	res, err := t.Stage.Process(dst, src, limit, mode)
	if n := before - src.Len(); n > 0 {
		t.n.Add(int64(n))
		testkit.Signal(t.sig)
	}
	return res, err
}

func (t *takenStage) Buffered() int { return buffered(t.Stage) }

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
