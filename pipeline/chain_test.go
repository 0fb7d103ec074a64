package pipeline_test

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

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

// TestChainFinishedBounded: a chain flushed with Finished under a limit
// holds its inner buffers to the limit too (a decompressor first in the
// chain does not inflate a bomb into the buffer between its stages), and
// a later stage gets Finished only once the stages before it are empty,
// so a length decoder after a decompressor sees no truncated stream.
func TestChainFinishedBounded(t *testing.T) {
	const n = 16 << 20
	lenEnc, _ := pipeline.LengthEncoder(0)
	framed := mustDrive(t, lenEnc, make([]byte, n), 1<<20, -1)
	c, _ := pipeline.Compress(pipeline.FormatGzip, flate.BestCompression)
	wire := mustDrive(t, c, framed, 1<<20, -1)
	lenDec, _ := pipeline.LengthDecoder(0)
	ch := pipeline.Chain(pipeline.Gunzip(), lenDec)
	defer ch.(io.Closer).Close()
	var src, dst actor.Buffer
	src.Write(wire)
	got := 0
	for calls := 0; src.Len() > 0 || buffered(ch) > 0 || calls == 0; calls++ {
		if calls > 10*n/bombHigh {
			t.Fatalf("no end after %d calls: %d decoded, %d raw and %d held left", calls, got, src.Len(), buffered(ch))
		}
		res, err := ch.Process(&dst, &src, bombHigh, actor.Finished)
		if res == pipeline.Failed {
			t.Fatalf("Finished after %d bytes: %v", got, err)
		}
		if dst.Len() > bombHigh {
			t.Fatalf("a call under limit %d put out %d bytes", bombHigh, dst.Len())
		}
		if h := buffered(ch); h > 2*bombHigh+bombChunk {
			t.Fatalf("the chain holds %d bytes, over a limit per link and a chunk", h)
		}
		got += dst.Len()
		dst.Drain(dst.Len())
	}
	if got != n {
		t.Errorf("decoded %d bytes, want %d", got, n)
	}
}
