package pipeline_test

import (
	"compress/flate"
	"fmt"
	"io"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

const benchChunk = 16 << 10

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
