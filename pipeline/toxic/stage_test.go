package toxic_test

import (
	"io"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline/toxic"
)

// A toxic stage with no toxic passes bytes on unchanged (actor.Passer), so
// a socket's actor may let writers skip it; a toxic added later applies to
// the next write at once.
func TestStagePassesWithoutToxics(t *testing.T) {
	cli, srv := testconn.Pair(t, "tcp")
	set := new(toxic.Set)
	st := set.NewStage(toxic.Downstream, toxic.StageConfig{})
	defer st.Close()
	b, err := actor.NewStaged(testbev.NewBase(t), srv, actor.CloseOnFree, nil, st)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st.SetWake(func() { b.Flush(actor.Write, actor.Normal) }) // as NewFilter does
	cli.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	buf := make([]byte, 1)
	if err := b.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cli, buf); err != nil || buf[0] != 'a' {
		t.Fatalf("read %q, %v, want a", buf, err)
	}
	if !st.Passes() {
		t.Fatalf("a stage with no toxic, after passing a chunk, does not pass")
	}

	const delay = 100 * time.Millisecond
	if err := set.Add(toxic.New("slow", toxic.Downstream, &toxic.Latency{Latency: delay.Milliseconds()})); err != nil {
		t.Fatal(err)
	}
	if st.Passes() {
		t.Fatalf("the stage passes with a latency toxic added")
	}
	start := time.Now()
	if err := b.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cli, buf); err != nil || buf[0] != 'b' {
		t.Fatalf("read %q, %v, want b", buf, err)
	}
	if took := time.Since(start); took < delay {
		t.Errorf("the write after the toxic was added arrived in %v, want at least %v", took, delay)
	}
}
