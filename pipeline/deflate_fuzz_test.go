package pipeline_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"testing"

	"github.com/bevgo/bev/pipeline"
)

// Fuzz targets of deflate.go's decompressors (the shape all fuzz targets
// follow is described in helpers_test.go).

func fuzzDecompress(f *testing.F, format pipeline.Format) {
	for _, in := range [][]byte{nil, []byte("a"), sample(5000), make([]byte, 33000)} {
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.BestCompression} {
			c, _ := pipeline.Compress(format, level)
			wire, err := drive(f, c, in, 1000, -1, true)
			if err != nil {
				f.Fatalf("seeding: %v", err)
			}
			f.Add(wire, uint8(200), uint8(0))
			f.Add(wire, uint8(3), uint8(17))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, limit uint8) {
		ch, lim := fuzzShape(chunk, limit)
		d, _ := pipeline.Decompress(format)
		got, err := drive(t, d, in, ch, lim, true)
		std, stdErr := stdDecompressErr(format, in)
		if err != nil {
			if !errors.Is(err, pipeline.ErrCorrupt) && !errors.Is(err, pipeline.ErrTruncated) && !errors.Is(err, pipeline.ErrTrailingData) {
				t.Fatalf("error %v wraps none of ErrCorrupt, ErrTruncated, ErrTrailingData", err)
			}
			// The standard library ignores what follows a flate or zlib
			// stream; nothing else it accepts may fail here.
			if stdErr == nil && len(in) > 0 && !errors.Is(err, pipeline.ErrTrailingData) {
				t.Fatalf("failed with %v on a stream the standard library decodes to %d bytes", err, len(std))
			}
			return
		}
		if stdErr == nil && !bytes.Equal(std, got) {
			t.Fatalf("decoded %d bytes, the standard library %d", len(got), len(std))
		}
		c, _ := pipeline.Compress(format, flate.BestSpeed)
		wire, err := drive(t, c, got, ch, lim, true)
		if err != nil {
			t.Fatalf("re-encoding failed: %v", err)
		}
		d2, _ := pipeline.Decompress(format)
		again, err := drive(t, d2, wire, 4096, -1, true)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded stream decodes to %d bytes, %v; want the %d decoded", len(again), err, len(got))
		}
	})
}

func FuzzInflate(f *testing.F) { fuzzDecompress(f, pipeline.FormatFlate) }
func FuzzUnzlib(f *testing.F)  { fuzzDecompress(f, pipeline.FormatZlib) }
func FuzzGunzip(f *testing.F)  { fuzzDecompress(f, pipeline.FormatGzip) }
