package actor_test

import (
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

var pairSizes = []int{64, 4 << 10, 64 << 10}

// window bounds the bytes in flight in the pair benchmark, as a kernel
// socket buffer would.
const window = 1 << 20

// pairStream moves chunks of size bytes from a to b: b's read callback
// drains and counts; the sender waits whenever more than window bytes are
// unread. It returns a function that sends one chunk and one that waits
// until everything sent has arrived.
func pairStream(tb testing.TB, size int, limit *limiter.Config) (send func(), wait func()) {
	a, b := testbev.NewPair(tb, 0)
	if limit != nil {
		a.SetRateLimit(limit)
		b.SetRateLimit(limit)
	}
	var received atomic.Int64
	space := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		n := s.Input().Len()
		s.Input().Drain(n)
		received.Add(int64(n))
		testkit.Signal(space)
	}})
	b.Enable(actor.Read)
	chunk := testkit.Pattern(size)
	var sent int64
	send = func() {
		for sent-received.Load() > window {
			<-space
		}
		a.Write(chunk)
		sent += int64(size)
	}
	wait = func() {
		for received.Load() < sent {
			<-space
		}
	}
	return send, wait
}

// BenchmarkPair measures a pair's throughput next to net.Pipe and io.Pipe
// moving the same chunks, the baselines of docs/benchmarks.md.
func BenchmarkPair(b *testing.B) {
	for _, size := range pairSizes {
		name := fmt.Sprintf("%dB", size)
		b.Run("bev/"+name, func(b *testing.B) {
			send, wait := pairStream(b, size, nil)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				send()
			}
			wait()
		})
		b.Run("netPipe/"+name, func(b *testing.B) {
			c1, c2 := net.Pipe()
			benchPipe(b, c1, c2, size)
		})
		b.Run("ioPipe/"+name, func(b *testing.B) {
			r, w := io.Pipe()
			benchPipe(b, w, r, size)
		})
	}
}

func benchPipe(b *testing.B, w io.WriteCloser, r io.ReadCloser, size int) {
	done := make(chan int64)
	go func() {
		buf := make([]byte, size)
		var n int64
		for {
			m, err := r.Read(buf)
			n += int64(m)
			if err != nil {
				done <- n
				return
			}
		}
	}()
	chunk := testkit.Pattern(size)
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	<-done
	r.Close()
}

// Steady-state streaming through a pair allocates nothing per chunk.
func TestPairAllocs(t *testing.T) {
	if actor.RaceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	send, wait := pairStream(t, 4<<10, nil)
	for range 1000 { // warm the pools
		send()
	}
	wait()
	allocs := testing.AllocsPerRun(2000, send)
	wait()
	if allocs > 0.05 {
		t.Errorf("pair streaming allocates %.3f times per 4 KiB chunk, want 0", allocs)
	}
}

// BenchmarkRateLimitCost streams through a pair whose ends carry a rate
// limit so high it never waits, next to the same pair without one: the
// cost of consulting the limiter on every read and write.
func BenchmarkRateLimitCost(b *testing.B) {
	huge, err := limiter.NewConfig(1<<50, 1<<50, 1<<50, 1<<50, limiter.DefaultTick)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 64 << 10} {
		for _, tc := range []struct {
			name  string
			limit *limiter.Config
		}{{"none", nil}, {"unlimited", huge}} {
			b.Run(fmt.Sprintf("%s/%dB", tc.name, size), func(b *testing.B) {
				send, wait := pairStream(b, size, tc.limit)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					send()
				}
				wait()
			})
		}
	}
}
