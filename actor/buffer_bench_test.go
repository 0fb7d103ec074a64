package actor_test

import (
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

var benchSizes = []struct {
	name string
	size int
}{
	{"64B", 64},
	{"4KiB", 4 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

func BenchmarkBuffer(b *testing.B) {
	for _, bs := range benchSizes {
		data := testkit.Pattern(bs.size)
		b.Run("Append/"+bs.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(bs.size))
			var buf actor.Buffer
			for b.Loop() {
				if _, err := buf.Write(data); err != nil {
					b.Fatalf("Write() = %v, want nil", err)
				}
				if err := buf.Drain(bs.size); err != nil {
					b.Fatalf("Drain() = %v, want nil", err)
				}
			}
		})
		b.Run("Move/"+bs.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(bs.size))
			var src, dst actor.Buffer
			if _, err := src.Write(data); err != nil {
				b.Fatalf("Write() = %v, want nil", err)
			}
			for b.Loop() {
				if err := dst.MoveFrom(&src); err != nil {
					b.Fatalf("MoveFrom() = %v, want nil", err)
				}
				if err := src.MoveFrom(&dst); err != nil {
					b.Fatalf("MoveFrom() = %v, want nil", err)
				}
			}
			if err := src.Reset(); err != nil {
				b.Fatalf("Reset() = %v, want nil", err)
			}
		})
		b.Run("MoveAppend/"+bs.name, func(b *testing.B) {
			// Both buffers keep a byte, so every move appends chunk pointers
			// behind existing ones instead of swapping chains.
			b.ReportAllocs()
			b.SetBytes(int64(bs.size))
			src, dst := new(actor.Buffer), new(actor.Buffer)
			if _, err := src.Write(data); err != nil {
				b.Fatalf("Write() = %v, want nil", err)
			}
			var one [1]byte
			for b.Loop() {
				if _, err := dst.Write(one[:]); err != nil {
					b.Fatalf("Write() = %v, want nil", err)
				}
				if err := dst.MoveFrom(src); err != nil {
					b.Fatalf("MoveFrom() = %v, want nil", err)
				}
				if _, err := dst.Read(one[:]); err != nil {
					b.Fatalf("Read() = %v, want nil", err)
				}
				src, dst = dst, src
			}
			if err := src.Reset(); err != nil {
				b.Fatalf("Reset() = %v, want nil", err)
			}
		})
		b.Run("ReadWrite/"+bs.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(bs.size))
			out := make([]byte, bs.size)
			var buf actor.Buffer
			for b.Loop() {
				if _, err := buf.Write(data); err != nil {
					b.Fatalf("Write() = %v, want nil", err)
				}
				if n, err := buf.Read(out); n != bs.size || err != nil {
					b.Fatalf("Read() = %d, %v, want %d, nil", n, err, bs.size)
				}
			}
		})
	}
}
