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

var errStage = errors.New("stage failed on purpose")

// Every stage this package makes, called by hand with a nil buffer or an
// unknown flush mode, fails with an error wrapping ErrInvalid, and stays
// usable: a bad call is not the stream's failure. Gzip, PassThrough and
// the length decoder used to panic on a nil buffer, and Gzip took mode 9
// for Normal.
func TestStagesRefuseBadArguments(t *testing.T) {
	makers := map[string]func() pipeline.Stage{
		"PassThrough": pipeline.PassThrough,
		"Gzip":        pipeline.Gzip,
		"Gunzip":      pipeline.Gunzip,
		"Zlib":        pipeline.Zlib,
		"Inflate":     pipeline.Inflate,
		"Tap":         func() pipeline.Stage { return pipeline.Tap(func([]byte) {}) },
		"Counter":     func() pipeline.Stage { return new(pipeline.Counter) },
		"Chain":       func() pipeline.Stage { return pipeline.Chain(pipeline.Gzip(), pipeline.Gunzip()) },
		"LineDecoder": func() pipeline.Stage { st, _ := pipeline.LineDecoder(actor.EOLLF, 64); return st },
		"LineEncoder": func() pipeline.Stage { st, _ := pipeline.LineEncoder(actor.EOLLF); return st },
		"LengthDecoder": func() pipeline.Stage {
			st, _ := pipeline.LengthDecoder(64)
			return st
		},
		"LengthEncoder": func() pipeline.Stage {
			st, _ := pipeline.LengthEncoder(64)
			return st
		},
	}
	for name, mk := range makers {
		t.Run(name, func(t *testing.T) {
			st := mk()
			var dst, src actor.Buffer
			for _, call := range []struct {
				what     string
				dst, src *actor.Buffer
				mode     actor.FlushMode
			}{
				{"nil dst", nil, &src, actor.Normal},
				{"nil src", &dst, nil, actor.Normal},
				{"mode 9", &dst, &src, actor.FlushMode(9)},
				{"mode -1", &dst, &src, actor.FlushMode(-1)},
			} {
				res, err := st.Process(call.dst, call.src, -1, call.mode)
				if res != pipeline.Failed || !errors.Is(err, pipeline.ErrInvalid) {
					t.Errorf("Process with %s = %v, %v, want Failed, ErrInvalid", call.what, res, err)
				}
			}
			// Not failed for good: a stage that keeps its error (the
			// decoders, the compressors, a chain) would fail again here.
			if res, err := st.Process(&dst, &src, -1, actor.Normal); res == pipeline.Failed {
				t.Errorf("Process after the bad calls = %v, %v, want the stage still usable", res, err)
			}
			if st, ok := st.(io.Closer); ok {
				st.Close()
			}
		})
	}
}
