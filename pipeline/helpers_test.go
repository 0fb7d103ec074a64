package pipeline_test

import (
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
)

// wait bounds every wait on a result in these tests; nothing sleeps.
const wait = 10 * time.Second

// linkKinds are the transports every behaviour test runs over: an actor
// pair and loopback TCP.
var linkKinds = []string{"pair", "tcp"}

// newBase returns a Base closed (and joined) when the test ends.
func newBase(t testing.TB) *actor.Base {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() {
		if err := base.Close(); err != nil {
			t.Errorf("base.Close() = %v, want nil", err)
		}
	})
	return base
}

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
		c1, c2 := tcpConns(t)
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

// tcpConns returns both ends of a loopback TCP connection, closed when
// the test ends.
func tcpConns(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	return testconn.Pair(t, "tcp")
}

// pattern returns n bytes, byte i being i mod 256, as libevent's tests
// write.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// recv waits for a value on c, failing the test after the wait bound.
func recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
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

// signal sends on a buffered(1) channel without blocking: a wake-up that
// is already pending is enough.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
