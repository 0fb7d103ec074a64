package pipeline_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

// drive runs st the way a filter does: in feeds the source in pieces of
// chunk bytes; after each piece the stage is called in Normal mode with
// limit while its source or the stage itself holds bytes and it makes
// progress, the destination being drained after each call (a reader that
// keeps up); at the end it is flushed with Finished under the same limit
// (called again while it holds bytes, as a filter does), unless finish is
// false. It fails the test when a call overruns its limit, and
// returns what the stage produced and its error.
func drive(t testing.TB, st pipeline.Stage, in []byte, chunk, limit int, finish bool) ([]byte, error) {
	t.Helper()
	var src, dst actor.Buffer
	var out bytes.Buffer
	call := func(mode actor.FlushMode) error {
		for called := false; ; called = true {
			waiting := src.Len() > 0 || buffered(st) > 0
			if !waiting && (called || mode == actor.Normal) {
				return nil
			}
			lim := limit
			srcBefore := src.Len()
			res, err := st.Process(&dst, &src, lim, mode)
			switch res {
			case pipeline.OK, pipeline.NeedMore:
			case pipeline.Failed:
				return err
			default:
				return fmt.Errorf("unknown result %d", res)
			}
			if lim >= 0 && dst.Len() > lim {
				t.Fatalf("Process(limit %d) produced %d bytes", lim, dst.Len())
			}
			produced := dst.Len()
			dst.WriteTo(&out)
			if res != pipeline.OK || (produced == 0 && src.Len() == srcBefore) {
				return nil
			}
		}
	}
	for off := 0; off < len(in); off += chunk {
		src.Write(in[off:min(off+chunk, len(in))])
		if err := call(actor.Normal); err != nil {
			return out.Bytes(), err
		}
	}
	if finish {
		if err := call(actor.Finished); err != nil {
			return out.Bytes(), err
		}
	}
	if c, ok := st.(io.Closer); ok {
		c.Close()
	}
	return out.Bytes(), nil
}

func buffered(st pipeline.Stage) int {
	if b, ok := st.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

// mustDrive is drive that fails the test on a stage error.
func mustDrive(t testing.TB, st pipeline.Stage, in []byte, chunk, limit int) []byte {
	t.Helper()
	out, err := drive(t, st, in, chunk, limit, true)
	if err != nil {
		t.Fatalf("stage failed: %v", err)
	}
	return out
}

// sample is compressible text with some noise.
func sample(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d: the quick brown fox %x\n", i, i*7919)
	}
	return b.Bytes()[:n]
}

func TestPassThroughAndCounter(t *testing.T) {
	in := sample(100000)
	for _, limit := range []int{-1, 1, 1000} {
		if got := mustDrive(t, pipeline.PassThrough(), in, 4096, limit); !bytes.Equal(got, in) {
			t.Errorf("PassThrough limit %d changed the stream", limit)
		}
		var c pipeline.Counter
		if got := mustDrive(t, &c, in, 4096, limit); !bytes.Equal(got, in) || c.Bytes() != int64(len(in)) || c.Calls() == 0 {
			t.Errorf("Counter limit %d: stream equal %v, Bytes() = %d, Calls() = %d", limit, bytes.Equal(got, in), c.Bytes(), c.Calls())
		}
	}
}

func TestTap(t *testing.T) {
	in := sample(200000)
	var seen bytes.Buffer
	got := mustDrive(t, pipeline.Tap(func(p []byte) { seen.Write(p) }), in, 70000, 100000)
	if !bytes.Equal(got, in) || !bytes.Equal(seen.Bytes(), in) {
		t.Errorf("Tap: output equal %v, seen equal %v, want both", bytes.Equal(got, in), bytes.Equal(seen.Bytes(), in))
	}
	if got := mustDrive(t, pipeline.Tap(nil), in, 4096, -1); !bytes.Equal(got, in) {
		t.Errorf("Tap(nil) changed the stream")
	}
}

var errStage = errors.New("stage failed on purpose")

func TestChain(t *testing.T) {
	in := sample(50000)
	enc := func() pipeline.Stage {
		le, _ := pipeline.LengthEncoder(1000)
		return pipeline.Chain(pipeline.Gzip(), nil, le)
	}
	dec := func() pipeline.Stage {
		ld, _ := pipeline.LengthDecoder(1000)
		return pipeline.Chain(ld, pipeline.Gunzip(), &pipeline.Counter{})
	}
	for _, limit := range []int{-1, 7, 4096} {
		wire := mustDrive(t, enc(), in, 3000, limit)
		if got := mustDrive(t, dec(), wire, 512, limit); !bytes.Equal(got, in) {
			t.Errorf("Chain round trip with limit %d: %d bytes, want %d", limit, len(got), len(in))
		}
	}
	if got := mustDrive(t, pipeline.Chain(), in, 4096, -1); !bytes.Equal(got, in) {
		t.Errorf("Chain() changed the stream")
	}

	failing := pipeline.StageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
		return pipeline.Failed, errStage
	})
	if _, err := drive(t, pipeline.Chain(nil, failing), in, 4096, -1, true); !errors.Is(err, errStage) {
		t.Errorf("chain with a failing stage: %v, want %v", err, errStage)
	}
	unknown := pipeline.StageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
		return 42, nil
	})
	if _, err := drive(t, pipeline.Chain(unknown), in, 4096, -1, true); !errors.Is(err, pipeline.ErrUnknownResult) {
		t.Errorf("chain with an unknown result: %v, want ErrUnknownResult", err)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	in := sample(100000)
	for _, f := range []pipeline.Format{pipeline.FormatFlate, pipeline.FormatZlib, pipeline.FormatGzip} {
		for _, level := range []int{-2, 0, 1, 6, 9} {
			for _, limit := range []int{-1, 100} {
				t.Run(fmt.Sprintf("%v/level%d/limit%d", f, level, limit), func(t *testing.T) {
					c, err := pipeline.Compress(f, level)
					if err != nil {
						t.Fatalf("Compress(%v, %d) = %v", f, level, err)
					}
					wire := mustDrive(t, c, in, 10000, limit)
					if got := stdDecompress(t, f, wire); !bytes.Equal(got, in) {
						t.Fatalf("the standard library decompressed %d bytes, want %d", len(got), len(in))
					}
					d, err := pipeline.Decompress(f)
					if err != nil {
						t.Fatalf("Decompress(%v) = %v", f, err)
					}
					if got := mustDrive(t, d, wire, 777, limit); !bytes.Equal(got, in) {
						t.Fatalf("decompressed %d bytes, want %d", len(got), len(in))
					}
				})
			}
		}
	}
}

func TestCompressArguments(t *testing.T) {
	if _, err := pipeline.Compress(pipeline.FormatGzip, 42); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Compress(gzip, 42) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.Compress(0, 1); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Compress(0, 1) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.Decompress(9); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Decompress(9) = %v, want ErrInvalid", err)
	}
}

// A decompressor holds what a small input expands to and releases it as
// room appears, never more than the limit per call.
func TestDecompressBoundedByLimit(t *testing.T) {
	wire := mustDrive(t, pipeline.Gzip(), make([]byte, 4<<20), 1<<20, -1)
	d := pipeline.Gunzip()
	var src, dst actor.Buffer
	src.Write(wire)
	total, calls := 0, 0
	for {
		res, err := d.Process(&dst, &src, 1000, actor.Normal)
		if err != nil || res == pipeline.Failed {
			t.Fatalf("Process = %v, %v", res, err)
		}
		if dst.Len() > 1000 {
			t.Fatalf("Process(limit 1000) produced %d bytes", dst.Len())
		}
		if res != pipeline.OK {
			break
		}
		total += dst.Len()
		dst.Reset()
		calls++
	}
	if total != 4<<20 || buffered(d) != 0 {
		t.Errorf("decompressed %d bytes in %d calls with %d held, want %d", total, calls, buffered(d), 4<<20)
	}
	d.(io.Closer).Close()
}

func TestDecompressErrors(t *testing.T) {
	wire := mustDrive(t, pipeline.Zlib(), sample(10000), 10000, -1)
	corrupt := bytes.Clone(wire)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name string
		st   pipeline.Stage
		in   []byte
		want error
	}{
		{"corrupt", pipeline.Unzlib(), corrupt, pipeline.ErrCorrupt},
		{"truncated", pipeline.Unzlib(), wire[:len(wire)-10], pipeline.ErrTruncated},
		{"trailing", pipeline.Unzlib(), append(bytes.Clone(wire), 'x'), pipeline.ErrTrailingData},
		{"bad header", pipeline.Gunzip(), []byte("not gzip at all"), pipeline.ErrCorrupt},
		{"empty", pipeline.Gunzip(), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drive(t, tc.st, tc.in, 1000, -1, true)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
	// A compressor refuses bytes after Finished.
	c := pipeline.Deflate()
	var src, dst actor.Buffer
	c.Process(&dst, &src, -1, actor.Finished)
	src.WriteString("late")
	if res, err := c.Process(&dst, &src, -1, actor.Normal); res != pipeline.Failed || !errors.Is(err, pipeline.ErrTrailingData) {
		t.Errorf("Process after Finished = %v, %v, want Failed with ErrTrailingData", res, err)
	}
}

// Flush emits everything so far: a peer can decode it all before the
// stream ends.
func TestCompressFlush(t *testing.T) {
	c := pipeline.Deflate()
	var src, dst actor.Buffer
	src.WriteString("hello, flush")
	c.Process(&dst, &src, -1, actor.Normal)
	c.Process(&dst, &src, -1, actor.Flush)
	if res, _ := c.Process(&dst, &src, -1, actor.Flush); res != pipeline.NeedMore {
		t.Errorf("a second Flush with nothing new = %v, want NeedMore (no empty sync blocks)", res)
	}
	d := pipeline.Inflate()
	defer d.(io.Closer).Close()
	var out actor.Buffer
	d.Process(&out, &dst, -1, actor.Normal)
	if got := out.Pullup(-1); string(got) != "hello, flush" {
		t.Errorf("decoded %q after Flush, want %q", got, "hello, flush")
	}
}
