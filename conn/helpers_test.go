package conn_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// The helpers every package's tests share (Recv, Signal, NewBase,
// Pattern, DrainAll, TCPConns) are in internal/testkit, internal/testbev
// and internal/testconn; what is here is conn's own.

// transport makes two bufferevents joined to each other.
type transport struct {
	name string
	make func(t testing.TB, base *actor.Base, opts actor.Option) (a, b *actor.Bufferevent)
}

// transports runs a behaviour test over loopback TCP sockets and, where
// the behaviour is not about sockets, over an actor pair too.
var transports = []transport{
	{"tcp", func(t testing.TB, base *actor.Base, opts actor.Option) (*actor.Bufferevent, *actor.Bufferevent) {
		c1, c2 := testconn.TCPConns(t)
		a, err := conn.New(base, c1, opts|actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		b, err := conn.New(base, c2, opts|actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return a.Bufferevent, b.Bufferevent
	}},
	{"pair", func(t testing.TB, base *actor.Base, opts actor.Option) (*actor.Bufferevent, *actor.Bufferevent) {
		a, b, err := actor.NewPair(base, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}},
}

// readFull is io.ReadFull with a deadline, so a lost byte fails the test
// instead of hanging it.
func readFull(c net.Conn, p []byte) (int, error) {
	c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	defer c.SetReadDeadline(time.Time{})
	return io.ReadFull(c, p)
}

// dialListener connects to ln over TCP, with a read and write deadline of
// testkit.WaitTime, and closes the connection when the test ends.
func dialListener(t *testing.T, ln *conn.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testkit.WaitTime))
	return c
}
