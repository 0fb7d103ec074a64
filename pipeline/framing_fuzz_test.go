package pipeline_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

// Fuzz targets of framing.go's decoders.

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
		d, _ := pipeline.LineDecoder(st, fuzzMaxLine)
		got, err := drive(t, d, in, ch, lim, true)
		want, tooLong := refLines(in, st)
		if err != nil {
			if !errors.Is(err, pipeline.ErrLineTooLong) || !tooLong {
				t.Fatalf("decoding %q in %d-byte pieces under limit %d failed: %v; the whole input has no line over %d bytes",
					in, ch, lim, err, fuzzMaxLine)
			}
			return
		}
		if tooLong {
			t.Fatalf("decoding %q accepted a line over %d bytes", in, fuzzMaxLine)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoding %q in %d-byte pieces under limit %d = %q; read whole, it is %q", in, ch, lim, got, want)
		}
		enc, _ := pipeline.LineEncoder(st)
		wire, err := drive(t, enc, got, ch, lim, true)
		if err != nil {
			t.Fatalf("re-encoding failed: %v", err)
		}
		d2, _ := pipeline.LineDecoder(st, fuzzMaxLine)
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
		want, wantErr := refFrames(in, 1000)
		if (err == nil) != (wantErr == nil) || (err != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("decoding %d bytes in %d-byte pieces under limit %d: %v; the frames say %v", len(in), ch, lim, err, wantErr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, the frames hold %d", len(got), len(want))
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

// fuzzMaxLine is the line decoders' maximum in FuzzLineDecoder.
const fuzzMaxLine = 64

// refLines is what a line decoder must make of in read whole: its lines
// ended by "\n" (the last one even without an end, EOLAny's empty lines
// dropped), and whether a line is over fuzzMaxLine bytes.
func refLines(in []byte, style actor.EOLStyle) (out []byte, tooLong bool) {
	var b actor.Buffer
	b.Write(in)
	for b.Len() > 0 {
		line, err := b.ReadLine(style)
		if err != nil {
			line = make([]byte, b.Len())
			b.Read(line)
		}
		if len(line) > fuzzMaxLine {
			return out, true
		}
		if len(line) == 0 && style == actor.EOLAny {
			continue
		}
		out = append(append(out, line...), '\n')
	}
	return out, false
}

// refFrames is what a length decoder with maximum max must make of in:
// the payloads, or the sentinel its error must wrap.
func refFrames(in []byte, max int) ([]byte, error) {
	var out []byte
	for len(in) > 0 {
		if len(in) < pipeline.FrameHeaderLen {
			return out, pipeline.ErrTruncated
		}
		n := int(binary.BigEndian.Uint32(in))
		if n > max {
			return out, pipeline.ErrFrameTooLarge
		}
		in = in[pipeline.FrameHeaderLen:]
		if len(in) < n {
			return out, pipeline.ErrTruncated
		}
		out = append(out, in[:n]...)
		in = in[n:]
	}
	return out, nil
}
