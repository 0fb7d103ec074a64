package pipeline_test

import (
	"bytes"
	"compress/flate"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

// The fuzz tests follow one shape: seed with bytes from our own encoder,
// decode the fuzzed input in pieces and under a limit (both fuzzed), stop
// on a decode error, and otherwise require that re-encoding succeeds and
// decodes to the same bytes.

func fuzzShape(chunk, limit uint8) (int, int) {
	l := int(limit)
	if l == 0 {
		l = -1
	}
	return int(chunk) + 1, l
}

func fuzzDecompress(f *testing.F, format pipeline.Format) {
	for _, in := range [][]byte{nil, []byte("a"), sample(5000), make([]byte, 70000)} {
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
		if err != nil {
			return
		}
		if std, err := stdDecompressErr(format, in); err == nil && !bytes.Equal(std, got) {
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

func FuzzLineDecoder(f *testing.F) {
	for _, style := range []actor.EOLStyle{actor.EOLAny, actor.EOLCRLF, actor.EOLCRLFStrict, actor.EOLLF, actor.EOLNUL} {
		enc, _ := pipeline.LineEncoder(style)
		wire, _ := drive(f, enc, []byte("GET / HTTP/1.1\nHost: x\n\nbody\r\n\x00end"), 5, -1, true)
		f.Add(wire, uint8(style), uint8(4), uint8(0))
		f.Add(wire, uint8(style), uint8(0), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, style, chunk, limit uint8) {
		st := actor.EOLStyle(style % 5)
		ch, lim := fuzzShape(chunk, limit)
		d, _ := pipeline.LineDecoder(st, 64)
		got, err := drive(t, d, in, ch, lim, true)
		if err != nil {
			return
		}
		enc, _ := pipeline.LineEncoder(st)
		wire, err := drive(t, enc, got, ch, lim, true)
		if err != nil {
			t.Fatalf("re-encoding failed: %v", err)
		}
		d2, _ := pipeline.LineDecoder(st, 64)
		again, err := drive(t, d2, wire, 7, -1, true)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded %q decodes to %q, %v; want %q", wire, again, err, got)
		}
	})
}

func FuzzLengthDecoder(f *testing.F) {
	for _, max := range []int{1, 5, 1000} {
		enc, _ := pipeline.LengthEncoder(max)
		for _, in := range [][]byte{nil, []byte("x"), sample(3000)} {
			wire, _ := drive(f, enc, in, 700, -1, true)
			f.Add(wire, uint8(3), uint8(0))
			f.Add(wire, uint8(255), uint8(9))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, limit uint8) {
		ch, lim := fuzzShape(chunk, limit)
		d, _ := pipeline.LengthDecoder(1000)
		got, err := drive(t, d, in, ch, lim, true)
		if err != nil {
			return
		}
		enc, _ := pipeline.LengthEncoder(1000)
		wire, err := drive(t, enc, got, ch, lim, true)
		if err != nil {
			t.Fatalf("re-encoding failed: %v", err)
		}
		d2, _ := pipeline.LengthDecoder(1000)
		again, err := drive(t, d2, wire, 64, -1, true)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded stream decodes to %d bytes, %v; want the %d decoded", len(again), err, len(got))
		}
	})
}
