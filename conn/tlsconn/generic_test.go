package tlsconn_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testkit"
)

// TestTLSThroughBufferevent: TLS sockets work through the embedded
// *actor.Bufferevent alone. An accepted TLS socket knows its addresses in
// the accept callback, before its handshake; its callbacks and Enable,
// set through the Bufferevent, start the handshake; a client made over a
// connection with tlsconn.New starts its own with Write and In on the
// Bufferevent, and the echo comes back through the In channel.
func TestTLSThroughBufferevent(t *testing.T) {
	base := testbev.NewBase(t)
	scfg, ccfg := testcert.Configs(t, "bev.test")
	remotes := make(chan net.Addr, 1)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0",
		conn.ListenerConfig{Options: actor.CloseOnFree, Layer: tlsconn.Server(scfg)},
		func(s *conn.Socket) {
			var b *actor.Bufferevent = s.Bufferevent
			var remote net.Addr
			if c := b.Conn(); c != nil {
				remote = c.RemoteAddr()
			}
			remotes <- remote
			testbev.Echo(b, nil)
		})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlsconn.New(base, raw, ccfg, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	defer s.Close()
	if remote := testkit.Recv(t, remotes, "the accept callback"); remote == nil || remote.String() != raw.LocalAddr().String() {
		t.Errorf("accepted socket's Conn().RemoteAddr() = %v in the accept callback, want %v", remote, raw.LocalAddr())
	}
	if c := s.Conn(); c == nil || c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("client's Conn() before the handshake = %v, want one with the server's address", c)
	}
	var b *actor.Bufferevent = s.Bufferevent
	if err := b.Write([]byte("hello over TLS")); err != nil {
		t.Fatal(err)
	}
	in := b.In()
	got := ""
	for len(got) < len("hello over TLS") {
		chunk, ok := recv2(t, in)
		if !ok {
			t.Fatalf("In closed after %q: %v", got, b.Err())
		}
		got += string(chunk)
	}
	if got != "hello over TLS" {
		t.Errorf("echo %q, want %q", got, "hello over TLS")
	}
	if st := tlsconn.Of(s).State(); st != tlsconn.Open {
		t.Errorf("State() = %v after the exchange, want Open", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Errorf("Drain = %v", err)
	}
}

// recv2 receives from a channel that may close, within testkit.WaitTime.
func recv2(t *testing.T, c <-chan []byte) ([]byte, bool) {
	t.Helper()
	timer := time.NewTimer(testkit.WaitTime)
	defer timer.Stop()
	select {
	case p, ok := <-c:
		return p, ok
	case <-timer.C:
		t.Fatal("timed out waiting for input")
		return nil, false
	}
}
