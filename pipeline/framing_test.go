package pipeline_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

func lineDecoder(t testing.TB, style actor.EOLStyle, max int) pipeline.Stage {
	t.Helper()
	st, err := pipeline.LineDecoder(style, max)
	if err != nil {
		t.Fatalf("LineDecoder(%v, %d) = %v", style, max, err)
	}
	return st
}

func lineEncoder(t testing.TB, style actor.EOLStyle) pipeline.Stage {
	t.Helper()
	st, err := pipeline.LineEncoder(style)
	if err != nil {
		t.Fatalf("LineEncoder(%v) = %v", style, err)
	}
	return st
}

func TestLineDecoder(t *testing.T) {
	tests := []struct {
		style   actor.EOLStyle
		in, out string
	}{
		{actor.EOLAny, "a\r\nb\n\n\rc\r", "a\nb\nc\n"},
		{actor.EOLAny, "\r\n\r\nx", "x\n"},
		{actor.EOLCRLF, "a\r\nb\nc\rd\r\n", "a\nb\nc\rd\n"},
		{actor.EOLCRLF, "tail\r", "tail\r\n"},
		{actor.EOLCRLFStrict, "a\r\nb\nc\r\n", "a\nb\nc\n"},
		{actor.EOLLF, "a\r\nb\n\n", "a\r\nb\n\n"},
		{actor.EOLNUL, "a\x00b\nc\x00", "a\nb\nc\n"},
		{actor.EOLLF, "", ""},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 1000} {
			for _, limit := range []int{-1, 1} {
				got := mustDrive(t, lineDecoder(t, tc.style, 0), []byte(tc.in), chunk, limit)
				if string(got) != tc.out {
					t.Errorf("LineDecoder(%v) of %q in %d-byte pieces, limit %d = %q, want %q", tc.style, tc.in, chunk, limit, got, tc.out)
				}
			}
		}
	}
}

// Only complete lines pass (without a limit): a partial line waits.
func TestLineDecoderWaitsForLines(t *testing.T) {
	got, err := drive(t, lineDecoder(t, actor.EOLCRLF, 0), []byte("one\r\ntw"), 100, -1, false)
	if err != nil || string(got) != "one\n" {
		t.Errorf("decoded %q, %v before the end, want %q", got, err, "one\n")
	}
}

func TestLineDecoderTooLong(t *testing.T) {
	for _, in := range []string{"0123456789abcdef", "0123456789abcdef\n"} {
		_, err := drive(t, lineDecoder(t, actor.EOLLF, 10), []byte(in), 4, -1, true)
		if !errors.Is(err, pipeline.ErrLineTooLong) {
			t.Errorf("decoding %q with max 10: %v, want ErrLineTooLong", in, err)
		}
	}
	if _, err := pipeline.LineDecoder(99, 0); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("LineDecoder(99) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.LineDecoder(actor.EOLLF, -1); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("LineDecoder(max -1) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.LineEncoder(-1); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("LineEncoder(-1) = %v, want ErrInvalid", err)
	}
}

func TestLineEncoder(t *testing.T) {
	tests := []struct {
		style   actor.EOLStyle
		in, out string
	}{
		{actor.EOLCRLF, "a\nb\n", "a\r\nb\r\n"},
		{actor.EOLCRLFStrict, "a\nb", "a\r\nb"},
		{actor.EOLNUL, "a\nb\n", "a\x00b\x00"},
		{actor.EOLLF, "a\nb\n", "a\nb\n"},
		{actor.EOLAny, "a\n", "a\n"},
	}
	for _, tc := range tests {
		for _, limit := range []int{-1, 1} {
			if got := mustDrive(t, lineEncoder(t, tc.style), []byte(tc.in), 1, limit); string(got) != tc.out {
				t.Errorf("LineEncoder(%v) of %q, limit %d = %q, want %q", tc.style, tc.in, limit, got, tc.out)
			}
		}
	}
}

func lengthCodec(t testing.TB, max int) (enc, dec pipeline.Stage) {
	t.Helper()
	enc, err := pipeline.LengthEncoder(max)
	if err != nil {
		t.Fatalf("LengthEncoder(%d) = %v", max, err)
	}
	dec, err = pipeline.LengthDecoder(max)
	if err != nil {
		t.Fatalf("LengthDecoder(%d) = %v", max, err)
	}
	return enc, dec
}

func TestLengthRoundTrip(t *testing.T) {
	in := sample(100000)
	for _, max := range []int{1, 1000, 0} {
		for _, limit := range []int{-1, 3, 5000} {
			enc, dec := lengthCodec(t, max)
			wire := mustDrive(t, enc, in, 7000, limit)
			if got := mustDrive(t, dec, wire, 333, limit); !bytes.Equal(got, in) {
				t.Errorf("max %d limit %d: round trip gave %d bytes, want %d", max, limit, len(got), len(in))
			}
		}
	}
}

// An oversized frame fails on its header alone, and a frame cut short at
// the end of the stream fails as truncated; neither passes on a byte of
// the bad frame.
func TestLengthDecoderErrors(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, 1<<31)
	_, dec := lengthCodec(t, 1<<20)
	out, err := drive(t, dec, append(huge, "tiny"...), 100, -1, false)
	if !errors.Is(err, pipeline.ErrFrameTooLarge) || len(out) != 0 {
		t.Errorf("a 2 GiB frame header: %q, %v, want ErrFrameTooLarge and nothing", out, err)
	}
	enc, dec := lengthCodec(t, 0)
	wire := mustDrive(t, enc, []byte("complete frame"), 100, -1)
	wire = append(wire, binary.BigEndian.AppendUint32(nil, 10)...)
	wire = append(wire, "cut"...)
	out, err = drive(t, dec, wire, 4, -1, true)
	if !errors.Is(err, pipeline.ErrTruncated) || string(out) != "complete frame" {
		t.Errorf("truncated frame: %q, %v, want the first frame and ErrTruncated", out, err)
	}
	for _, max := range []int{-1, 1 << 40} {
		if _, err := pipeline.LengthEncoder(max); !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("LengthEncoder(%d) = %v, want ErrInvalid", max, err)
		}
		if _, err := pipeline.LengthDecoder(max); !errors.Is(err, pipeline.ErrInvalid) {
			t.Errorf("LengthDecoder(%d) = %v, want ErrInvalid", max, err)
		}
	}
}

// A frame header never makes the decoder allocate what it claims.
func TestLengthDecoderAllocatesNothingForAClaim(t *testing.T) {
	_, dec := lengthCodec(t, 1<<30)
	var src, dst actor.Buffer
	src.Write(binary.BigEndian.AppendUint32(nil, 1<<29))
	allocs := testing.AllocsPerRun(100, func() {
		dec.Process(&dst, &src, -1, actor.Normal)
	})
	if allocs != 0 {
		t.Errorf("Process with a 512 MiB claim allocated %v times per call, want 0", allocs)
	}
}
