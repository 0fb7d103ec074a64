package tlsconn_test

import (
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
)

// waitTime bounds every wait in these tests: far above what a healthy run
// needs, so a failure means a hang, not a slow machine.
const waitTime = 10 * time.Second

// recv waits for a value on c, failing the test after waitTime.
func recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitTime)
	defer timer.Stop()
	select {
	case v := <-c:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// newBase returns a Base closed (and checked) when the test ends.
func newBase(t testing.TB) *actor.Base {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() {
		if err := base.Close(); err != nil {
			t.Errorf("Base.Close() = %v, want nil", err)
		}
	})
	return base
}

// tcpConns returns both ends of a loopback TCP connection, closed when
// the test ends.
func tcpConns(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	c, s := testconn.Pair(t, "tcp")
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// pattern returns n bytes whose byte i is i mod 256, as libevent's tests.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// drainAll empties buf into a fresh slice.
func drainAll(t testing.TB, buf *actor.Buffer) []byte {
	p := make([]byte, buf.Len())
	if _, err := buf.Read(p); err != nil && len(p) > 0 {
		t.Errorf("Buffer.Read = %v, want nil", err)
	}
	return p
}
