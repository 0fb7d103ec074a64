package actor_test

import (
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// waitTimeout bounds every wait in these tests; nothing should come close.
const waitTimeout = 10 * time.Second

// recv waits for a value on c, failing the test after waitTimeout.
func recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// newBase returns a Base closed when the test ends.
func newBase(t testing.TB) *actor.Base {
	t.Helper()
	b := actor.NewBase()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Base.Close() = %v", err)
		}
	})
	return b
}

// newPair returns a pair owned by a Base closed when the test ends.
func newPair(t testing.TB, opts actor.Option) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	a, b, err := actor.NewPair(newBase(t), opts)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	return a, b
}

// seq returns n bytes whose byte i is i mod 256, as libevent's tests.
func seq(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// drainAll removes everything from buf and returns it.
func drainAll(buf *actor.Buffer) []byte {
	p := make([]byte, buf.Len())
	n, _ := buf.Read(p)
	return p[:n]
}

// signal sends on a buffered(1) channel without blocking: a wake-up that
// is already pending is enough.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
