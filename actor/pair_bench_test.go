package actor_test

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/bevgo/bev/internal/testkit"
)

var pairSizes = []int{64, 4 << 10, 64 << 10}

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
