package toxic_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
	"github.com/bevgo/bev/pipeline/toxic"
)

// rig is a pair whose far end (peer) is plain and whose near end carries
// a toxic filter (f): what peer writes goes through the Downstream toxics
// into f's input, what f writes through the Upstream toxics to peer.
type rig struct {
	base *actor.Base
	peer *actor.Bufferevent
	f    *actor.Bufferevent
	set  *toxic.Set
}

func newRig(t testing.TB, set *toxic.Set) *rig {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() { base.Close() })
	return newRigOn(t, base, set)
}

// newRigOn is newRig on base, which the caller closes.
func newRigOn(t testing.TB, base *actor.Base, set *toxic.Set) *rig {
	t.Helper()
	peer, near, err := actor.NewPair(base, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	f, err := toxic.NewFilter(near, set, toxic.Downstream, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	// Both ends read from the start, into their In channels.
	f.In()
	peer.In()
	return &rig{base: base, peer: peer, f: f, set: set}
}

// arrival is a chunk and when it came.
type arrival struct {
	p  []byte
	at time.Time
}

// collect reads b's In channel into a slice of arrivals until it closes
// or want bytes came, and returns them with b's Err.
func collect(t testing.TB, b *actor.Bufferevent, want int, limit time.Duration) ([]arrival, error) {
	t.Helper()
	var got []arrival
	n := 0
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	in := b.In()
	for n < want {
		select {
		case p, ok := <-in:
			if !ok {
				return got, b.Err()
			}
			got = append(got, arrival{bytes.Clone(p), time.Now()})
			n += len(p)
		case <-deadline.C:
			t.Fatalf("collect: %d of %d bytes after %v", n, want, limit)
		}
	}
	return got, nil
}

func joined(as []arrival) []byte {
	var out []byte
	for _, a := range as {
		out = append(out, a.p...)
	}
	return out
}

// waitEnd waits for b's In channel to close and returns b's Err.
func waitEnd(t testing.TB, b *actor.Bufferevent, limit time.Duration) ([]byte, error) {
	t.Helper()
	var got []byte
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	in := b.In()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				err := b.Err()
				if errors.Is(err, actor.ErrClosed) {
					err = nil
				}
				return got, err
			}
			got = append(got, p...)
		case <-deadline.C:
			t.Fatalf("waitEnd: no end after %v (%d bytes)", limit, len(got))
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// pipelineFilter is a filter over near with st as its input stage, woken
// by st's timer.
func pipelineFilter(near *actor.Bufferevent, st *toxic.Stage) (*actor.Bufferevent, error) {
	f, err := pipeline.NewFilter(near, st, nil, actor.CloseOnFree)
	if err != nil {
		return nil, err
	}
	st.SetWake(func() { f.Flush(actor.Read, actor.Normal) })
	return f, nil
}
