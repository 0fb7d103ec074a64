package pipeline_test

import (
	"bytes"
	"errors"
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
