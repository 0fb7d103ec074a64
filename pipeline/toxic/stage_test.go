package toxic_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
	"github.com/bevgo/bev/pipeline/toxic"
)

// socketStage puts set's downstream stage on the output of a TCP socket's
// bufferevent (woken as NewFilter wakes it) and returns the stage, the
// bufferevent and the socket's peer, whose reads have the test's deadline.
func socketStage(t *testing.T, set *toxic.Set) (*toxic.Stage, *actor.Bufferevent, net.Conn) {
	t.Helper()
	cli, srv := testconn.Pair(t, "tcp")
	st := set.NewStage(toxic.Downstream, toxic.StageConfig{})
	t.Cleanup(func() { st.Close() })
	b, err := actor.NewStaged(testbev.NewBase(t), srv, actor.CloseOnFree, nil, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st.SetWake(func() { b.Flush(actor.Write, actor.Normal) })
	cli.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	return st, b, cli
}

// writeAcross writes the byte c through b and reads it from cli, and
// returns how long that took.
func writeAcross(t *testing.T, b *actor.Bufferevent, cli net.Conn, c byte) time.Duration {
	t.Helper()
	start := time.Now()
	if err := b.Write([]byte{c}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(cli, buf); err != nil || buf[0] != c {
		t.Fatalf("read %q, %v, want %q", buf, err, c)
	}
	return time.Since(start)
}

// A toxic stage with no toxic passes bytes on unchanged (actor.Passer), so
// a socket's actor may let writers skip it; a toxic added later applies to
// the next write at once.
func TestStagePassesWithoutToxics(t *testing.T) {
	set := new(toxic.Set)
	st, b, cli := socketStage(t, set)
	writeAcross(t, b, cli, 'a')
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
	if took := writeAcross(t, b, cli, 'b'); took < delay {
		t.Errorf("the write after the toxic was added arrived in %v, want at least %v", took, delay)
	}
}

// A stage whose toxics are all transparent (a latency of 0 with no
// jitter, a bandwidth of 0, a toxic its toxicity roll left out) passes
// bytes on unchanged as one with none does; updating the latency to 100 ms
// applies from the next write.
func TestStagePassesWithTransparentToxics(t *testing.T) {
	set := new(toxic.Set)
	never := toxic.New("never", toxic.Downstream, &toxic.Timeout{})
	never.Toxicity = 0
	for _, tx := range []toxic.Toxic{
		toxic.New("lat0", toxic.Downstream, &toxic.Latency{}),
		toxic.New("bw0", toxic.Downstream, &toxic.Bandwidth{}),
		never,
	} {
		if err := set.Add(tx); err != nil {
			t.Fatal(err)
		}
	}
	st, b, cli := socketStage(t, set)
	writeAcross(t, b, cli, 'a')
	if !st.Passes() {
		t.Fatalf("a stage with transparent toxics, after passing a chunk, does not pass")
	}

	const delay = 100 * time.Millisecond
	if err := set.Update(toxic.New("lat0", toxic.Downstream, &toxic.Latency{Latency: delay.Milliseconds()})); err != nil {
		t.Fatal(err)
	}
	if st.Passes() {
		t.Fatalf("the stage passes with its latency toxic updated to %v", delay)
	}
	if took := writeAcross(t, b, cli, 'b'); took < delay {
		t.Errorf("the write after the update arrived in %v, want at least %v", took, delay)
	}
	if st.Passes() {
		t.Fatalf("the stage passes with a 100 ms latency")
	}
}

// TestTransparentToxicsThenDelay: on both streams of a filter, transparent
// toxics add nothing; a latency updated from 0 to 50 ms, and a latency
// added with toxicity 1 after a transparent one, apply from the next
// chunk; updated back to 0, the latency holds nothing from then on, and
// what it held under 50 ms still comes first.
func TestTransparentToxicsThenDelay(t *testing.T) {
	for _, stream := range []toxic.Stream{toxic.Downstream, toxic.Upstream} {
		t.Run(stream.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, newSet(t, toxic.New("lat", stream, &toxic.Latency{}),
					toxic.New("bw", stream, &toxic.Bandwidth{})))
				from, to := r.peer, r.f
				if stream == toxic.Upstream {
					from, to = r.f, r.peer
				}
				send := func(p string) time.Duration {
					t.Helper()
					start := time.Now()
					must(t, from.Write([]byte(p)))
					got, err := collect(t, to, len(p), time.Hour)
					must(t, err)
					if string(joined(got)) != p {
						t.Fatalf("got %q, want %q", joined(got), p)
					}
					return got[len(got)-1].at.Sub(start)
				}
				if d := send("a"); d != 0 {
					t.Fatalf("through transparent toxics after %v, want 0", d)
				}
				must(t, r.set.Update(toxic.New("lat", stream, &toxic.Latency{Latency: 50})))
				if d := send("b"); d != 50*time.Millisecond {
					t.Fatalf("after the update to 50 ms: %v", d)
				}
				// Held under 50 ms, then the latency goes back to 0: "c"
				// still comes at 50 ms, and "d", sent after, with it.
				start := time.Now()
				must(t, from.Write([]byte("c")))
				time.Sleep(10 * time.Millisecond)
				must(t, r.set.Update(toxic.New("lat", stream, &toxic.Latency{})))
				must(t, from.Write([]byte("d")))
				got, err := collect(t, to, 2, time.Hour)
				must(t, err)
				if string(joined(got)) != "cd" || got[0].at.Sub(start) != 50*time.Millisecond {
					t.Fatalf("got %q, first at %v, want %q at 50ms", joined(got), got[0].at.Sub(start), "cd")
				}
				if d := send("e"); d != 0 {
					t.Fatalf("back to 0 ms: %v", d)
				}
				must(t, r.set.Update(toxic.New("bw", stream, &toxic.Bandwidth{Rate: 1})))
				if d := send("fg"); d == 0 {
					t.Fatalf("a bandwidth of 1 KB/s passed 2 bytes at once")
				}
			})
		})
	}
}

// A stage has the toxics its set had when it was made, as toxiproxy's
// link has those of the moment its connection was made: a timeout toxic
// removed before the stage's first call still closes its stream then, and
// drops what came, whichever of the removal and the first bytes comes
// first. (The stage used to take its toxics at its first call, so that
// bytes reaching it after the removal passed and the stream stayed open:
// TestToxiproxyClosing/timeout_0_removed hung so, 3 runs in 160.)
func TestStageTakesToxicsWhenMade(t *testing.T) {
	set := new(toxic.Set)
	if err := set.Add(toxic.New("to", toxic.Downstream, &toxic.Timeout{})); err != nil {
		t.Fatal(err)
	}
	var ends []bool
	st := set.NewStage(toxic.Downstream, toxic.StageConfig{End: func(reset bool) error {
		ends = append(ends, reset)
		return nil
	}})
	defer st.Close()
	if err := set.Remove("to"); err != nil {
		t.Fatal(err)
	}
	var dst, src actor.Buffer
	src.WriteString("after the removal")
	if _, err := st.Process(&dst, &src, -1, actor.Normal); err != nil {
		t.Fatalf("Process: %v", err)
	}
	if dst.Len() != 0 || src.Len() != 0 {
		t.Errorf("after the removal, %d bytes passed and %d were left; want none passed, all dropped", dst.Len(), src.Len())
	}
	if len(ends) != 1 || ends[0] {
		t.Errorf("End calls (reset?) %v; want one close", ends)
	}
}

// A toxic stage called by hand with a nil buffer or an unknown flush mode
// fails with ErrInvalid, as pipeline's stages do, and still passes bytes
// afterwards (it dereferenced the nil buffer).
func TestStageRefusesBadArguments(t *testing.T) {
	st := new(toxic.Set).NewStage(toxic.Downstream, toxic.StageConfig{})
	var dst, src actor.Buffer
	for _, call := range []struct {
		what     string
		dst, src *actor.Buffer
		mode     actor.FlushMode
	}{
		{"nil dst", nil, &src, actor.Normal},
		{"nil src", &dst, nil, actor.Normal},
		{"mode 9", &dst, &src, actor.FlushMode(9)},
	} {
		if res, err := st.Process(call.dst, call.src, -1, call.mode); res != pipeline.Failed || !errors.Is(err, toxic.ErrInvalid) {
			t.Errorf("Process with %s = %v, %v, want Failed, ErrInvalid", call.what, res, err)
		}
	}
	src.WriteString("ok")
	if res, err := st.Process(&dst, &src, -1, actor.Normal); res == pipeline.Failed || dst.Len() != 2 {
		t.Errorf("Process after the bad calls = %v, %v, moved %d bytes, want the 2 passed", res, err, dst.Len())
	}
}
