package pipeline_test

import (
	"bytes"
	"testing"

	"github.com/bevgo/bev/pipeline"
)

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
