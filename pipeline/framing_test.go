package pipeline_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
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

// A line of exactly max bytes ending in CR LF is legal, also when the
// stream splits between the CR and the LF (found by FuzzLineDecoder); one
// byte more is not.
func TestLineDecoderMaxLineSplitCRLF(t *testing.T) {
	const max = 64
	line := strings.Repeat("x", max)
	for _, style := range []actor.EOLStyle{actor.EOLCRLF, actor.EOLCRLFStrict} {
		for _, chunk := range []int{max + 1, 1, 7, 1000} {
			got, err := drive(t, lineDecoder(t, style, max), []byte(line+"\r\nnext\r\n"), chunk, -1, true)
			if err != nil || string(got) != line+"\nnext\n" {
				t.Errorf("%v, %d-byte pieces: decoded %q, %v; want the %d-byte line and the next", style, chunk, got, err, max)
			}
			_, err = drive(t, lineDecoder(t, style, max), []byte(line+"y\r\n"), chunk, -1, true)
			if !errors.Is(err, pipeline.ErrLineTooLong) {
				t.Errorf("%v, %d-byte pieces: a line of %d bytes gave %v, want ErrLineTooLong", style, chunk, max+1, err)
			}
		}
	}
}

// The decoder scans each byte once: what it has scanned of an unfinished
// line leaves src (all of it but a CR that may start a CR LF), so a long
// line costs time linear in its length, not quadratic.
func TestLineDecoderScansOnce(t *testing.T) {
	for _, style := range []actor.EOLStyle{actor.EOLAny, actor.EOLCRLF, actor.EOLCRLFStrict, actor.EOLLF, actor.EOLNUL} {
		d := lineDecoder(t, style, 1<<20)
		var src, dst actor.Buffer
		piece := []byte(strings.Repeat("abcdefg\r", 1000))
		if style == actor.EOLAny {
			piece = bytes.Repeat([]byte("abcdefgh"), 1000)
		}
		for i := 0; i < 100; i++ {
			src.Write(piece)
			if res, err := d.Process(&dst, &src, -1, actor.Normal); res == pipeline.Failed {
				t.Fatalf("%v: Process = %v", style, err)
			}
			if dst.Len() != 0 || src.Len() > 1 {
				t.Fatalf("%v: after %d bytes of one line, %d bytes out and %d left in src, want 0 and at most 1", style, (i+1)*len(piece), dst.Len(), src.Len())
			}
		}
		end := map[actor.EOLStyle]string{actor.EOLAny: "\n", actor.EOLCRLF: "\r\n", actor.EOLCRLFStrict: "\r\n", actor.EOLLF: "\n", actor.EOLNUL: "\x00"}[style]
		src.Write([]byte(end))
		if res, err := d.Process(&dst, &src, -1, actor.Normal); res != pipeline.OK || dst.Len() != 100*len(piece)+1 || src.Len() != 0 {
			t.Errorf("%v: the end of the line gave %v %v, %d bytes out and %d left, want the %d-byte line", style, res, err, dst.Len(), src.Len(), 100*len(piece))
		}
	}
}

// BenchmarkLineDecoderLongLine feeds one line of b.N bytes in 64 KiB
// pieces to a decoder whose maximum allows it: the cost per byte stays
// flat however long the line (issue 13: it grew at 10 MiB/s).
func BenchmarkLineDecoderLongLine(b *testing.B) {
	piece := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	const total = 100 << 20
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		d := lineDecoder(b, actor.EOLCRLF, total+1)
		var src, dst actor.Buffer
		for fed := 0; fed < total; fed += len(piece) {
			src.Write(piece)
			d.Process(&dst, &src, -1, actor.Normal)
		}
		src.Write([]byte("\r\n"))
		d.Process(&dst, &src, -1, actor.Normal)
		if dst.Len() != total+1 {
			b.Fatalf("decoded %d bytes, want %d", dst.Len(), total+1)
		}
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

// At Finished under a limit, complete frames that the limit kept the
// decoder from reaching are not a truncated stream: a filter now flushes
// its input stage within the read high watermark.
func TestLengthDecoderFinishedUnderLimit(t *testing.T) {
	enc, _ := lengthCodec(t, 100)
	wire := mustDrive(t, enc, testkit.Pattern(1000), 100, -1)
	for _, limit := range []int{1, 100, 101, 250} {
		_, dec := lengthCodec(t, 100)
		var src, dst actor.Buffer
		src.Write(wire)
		var out []byte
		for range 2000 {
			res, err := dec.Process(&dst, &src, limit, actor.Finished)
			if res == pipeline.Failed {
				t.Fatalf("limit %d: Finished after %d bytes: %v", limit, len(out), err)
			}
			p := make([]byte, dst.Len())
			dst.Read(p)
			out = append(out, p...)
			if src.Len() == 0 && buffered(dec) == 0 {
				break
			}
		}
		if !bytes.Equal(out, testkit.Pattern(1000)) {
			t.Errorf("limit %d: decoded %d bytes, want the 1000 sent", limit, len(out))
		}
	}
	_, dec := lengthCodec(t, 100)
	if _, err := drive(t, dec, wire[:len(wire)-1], 50, 7, true); !errors.Is(err, pipeline.ErrTruncated) {
		t.Errorf("a cut frame at Finished under a limit: %v, want ErrTruncated", err)
	}
}
