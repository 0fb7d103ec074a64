package pipeline_test

import (
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
)

// linkKinds are the transports every behaviour test runs over: an actor
// pair and loopback TCP.
var linkKinds = []string{"pair", "tcp"}

// newLink returns two connected bufferevents of the given kind: the ends
// of a pair made with opts, or both sides of a loopback TCP connection
// with CloseOnFree|opts.
func newLink(t testing.TB, base *actor.Base, kind string, opts actor.Option) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	switch kind {
	case "pair":
		a, b, err := actor.NewPair(base, opts)
		if err != nil {
			t.Fatalf("NewPair = %v", err)
		}
		return a, b
	case "tcp":
		c1, c2 := testconn.Pair(t, "tcp")
		a, err := actor.New(base, c1, actor.CloseOnFree|opts)
		if err != nil {
			t.Fatalf("New(tcp) = %v", err)
		}
		b, err := actor.New(base, c2, actor.CloseOnFree|opts)
		if err != nil {
			t.Fatalf("New(tcp) = %v", err)
		}
		return a, b
	}
	t.Fatalf("unknown link kind %q", kind)
	return nil, nil
}

// closeAll closes bufferevents and reports unexpected errors.
func closeAll(t testing.TB, bs ...*actor.Bufferevent) {
	t.Helper()
	for _, b := range bs {
		if b == nil {
			continue
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	}
}
