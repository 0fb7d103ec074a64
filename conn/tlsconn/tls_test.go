package tlsconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of tls.go's basic behaviour: TLS sockets counting to 1001 and
// under watermarks (libevent's ssl/bufferevent_socketpair and _wm), the
// API's flags, state and argument checks, and TLS sockets used through
// the embedded *actor.Bufferevent alone.

// TestTLSExchange is libevent's ssl/bufferevent_socketpair (and
// _write_after_connect): a client and a server TLS socket over one TCP
// connection count to 1001. Both report Connected; the side that reads
// 1001 is drained (libevent frees it), which sends close_notify, so the
// other side sees EOF where libevent's sees an error.
func TestTLSExchange(t *testing.T) {
	for _, writeOnConnect := range []bool{false, true} {
		t.Run(fmt.Sprintf("write_after_connect=%v", writeOnConnect), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			c1, c2 := testconn.TCPConns(t)
			opts := actor.DeferCallbacks | actor.CloseOnFree
			var cnt counter
			finished := make(chan *actor.Bufferevent, 2)
			client, err := tlsconn.New(base, c1, ccfg, tlsconn.Connecting, opts)
			if err != nil {
				t.Fatal(err)
			}
			server, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, opts)
			if err != nil {
				t.Fatal(err)
			}
			if st := tlsconn.Of(client).State(); st != tlsconn.Connecting && st != tlsconn.Open {
				t.Errorf("client State() = %v, want Connecting (or Open)", st)
			}
			for _, s := range []*conn.Socket{client, server} {
				s.SetCallbacks(actor.Callbacks{
					Read:  cnt.respond(t, finished),
					Event: cnt.event(t, finished, writeOnConnect && s == client),
				})
				s.Enable(actor.Read | actor.Write)
			}
			if !writeOnConnect {
				client.Write([]byte("1\n"))
			}
			last := testkit.Recv(t, finished, "the count to 1001")
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			if err := last.Drain(ctx); err != nil {
				t.Errorf("Drain = %v, want nil", err)
			}
			testkit.Recv(t, finished, "the other side to close")
			<-client.Done()
			<-server.Done()
			if n := cnt.connected.Load(); n != 2 {
				t.Errorf("%d Connected events, want 2", n)
			}
			if n := cnt.done.Load(); n != 1 {
				t.Errorf("1001 read %d times, want 1", n)
			}
			if c, e := cnt.closed.Load(), cnt.errored.Load(); c != 1 || e != 0 {
				t.Errorf("other side: %d EOF, %d errors, want 1 EOF (close_notify was sent), 0 errors", c, e)
			}
			if n := cnt.timeouts.Load(); n != 0 {
				t.Errorf("%d timeouts, want 0", n)
			}
		})
	}
}

// TestTLSWatermarks is libevent's ssl/bufferevent_wm{,_defer}: both sides
// have a read high watermark of 5 KiB, take 512 bytes per read callback
// and answer each with the 1 KiB payload, until each has consumed
// exactly 40 KiB: reading must not stall at the high watermark, and the
// input never holds more than the mark.
func TestTLSWatermarks(t *testing.T) {
	const (
		payload = 1 << 10
		high    = 5 << 10
		limit   = high << 3
		take    = payload >> 1
	)
	for _, opts := range []actor.Option{0, actor.DeferCallbacks} {
		t.Run(fmt.Sprintf("opts=%#x", uint32(opts)), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			data := make([]byte, payload)
			for i := range data {
				data[i] = 'A'
			}
			type side struct {
				got  int
				done chan int
			}
			transfer := func(sd *side) actor.Callbacks {
				return actor.Callbacks{Read: func(s *actor.Session) {
					if in := s.Input().Len(); in > high {
						t.Errorf("input holds %d bytes, high mark %d", in, high)
					}
					if sd.got >= limit {
						return
					}
					n := min(s.Input().Len(), take, limit-sd.got)
					s.Input().Drain(n)
					sd.got += n
					if sd.got == limit {
						s.Disable(actor.Read)
						sd.done <- sd.got
						return
					}
					s.Write(data)
				}}
			}
			server := &side{done: make(chan int, 1)}
			client := &side{done: make(chan int, 1)}
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: opts | actor.CloseOnFree, Layer: tlsconn.Server(scfg)},
				func(s *conn.Socket) {
					s.SetWatermark(actor.Read, 0, high)
					s.SetCallbacks(transfer(server))
					s.Enable(actor.Read | actor.Write)
				})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			s, err := tlsconn.New(base, nil, ccfg, tlsconn.Connecting, opts|actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			s.SetWatermark(actor.Read, 0, high)
			s.SetCallbacks(transfer(client))
			if err := s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
				t.Fatal(err)
			}
			s.Write(data)
			s.Enable(actor.Read | actor.Write)
			if got := testkit.Recv(t, client.done, "the client's 40 KiB"); got != limit {
				t.Errorf("client consumed %d, want %d", got, limit)
			}
			if got := testkit.Recv(t, server.done, "the server's 40 KiB"); got != limit {
				t.Errorf("server consumed %d, want %d", got, limit)
			}
		})
	}
}

// TestTLSAPI: flags and state on TLS and plain sockets, and New's
// argument checks.
func TestTLSAPI(t *testing.T) {
	base := testbev.NewBase(t)
	plain, err := conn.New(base, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if (tlsconn.Of(plain) != nil) || tlsconn.Of(plain).Conn() != nil || tlsconn.Of(plain).Err() != nil || tlsconn.Of(plain).Flags() != 0 || tlsconn.Of(plain).State() != tlsconn.Open {
		t.Errorf("a plain socket reports TLS state")
	}
	if _, err := tlsconn.Of(plain).SetFlags(tlsconn.DirtyShutdown); !errors.Is(err, tlsconn.ErrNotTLS) {
		t.Errorf("SetFlags on a plain socket = %v, want ErrNotTLS", err)
	}
	s, err := tlsconn.New(base, nil, nil, tlsconn.Connecting, 0)
	if err != nil {
		t.Fatal(err)
	}
	if (tlsconn.Of(s) == nil) || tlsconn.Of(s).State() != tlsconn.Connecting {
		t.Errorf("Of != nil, State = %v, %v, want true, Connecting", (tlsconn.Of(s) != nil), tlsconn.Of(s).State())
	}
	if _, err := tlsconn.Of(s).SetFlags(1 << 5); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("SetFlags(unknown) = %v, want ErrInvalid", err)
	}
	tlsconn.Of(s).SetFlags(tlsconn.DirtyShutdown)
	if old, err := tlsconn.Of(s).ClearFlags(tlsconn.DirtyShutdown); old != tlsconn.DirtyShutdown || err != nil || tlsconn.Of(s).Flags() != 0 {
		t.Errorf("ClearFlags = %v, %v (now %v), want DirtyShutdown, nil (now 0)", old, err, tlsconn.Of(s).Flags())
	}
	c1, _ := testconn.TCPConns(t)
	if _, err := tlsconn.New(base, c1, nil, tlsconn.Open, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(plain conn, Open) = %v, want ErrInvalid", err)
	}
	if _, err := tlsconn.New(base, nil, nil, tlsconn.State(7), 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(state 7) = %v, want ErrInvalid", err)
	}
}

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
