package bev_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// TestPipelineThroughEverything sends 1 MiB through every kind of
// bufferevent and back, byte-exact: a TLS filter over one end of a pair,
// the other end relayed onto a TCP socket, a proxy relaying that to a TLS
// upstream socket, which echoes. The TLS stream runs end to end over the
// pair, two relays and three TCP hops. Draining the client sends
// close_notify through the whole chain, so the upstream reads a clean EOF,
// every relay ends, and no goroutine is left.
func TestPipelineThroughEverything(t *testing.T) {
	const total = 1 << 20
	base := testbev.NewBase(t)
	serverTLS, clientTLS := testcert.Configs(t, "upstream.test")

	// The upstream: a TLS echo server that closes once the client has
	// finished and the echo is out, reporting its socket's events.
	upEvents := make(chan actor.EventInfo, 16)
	upstream, err := conn.Listen(base, "tcp", "127.0.0.1:0",
		conn.ListenerConfig{Options: actor.CloseOnFree, Layer: tlsconn.Server(serverTLS)},
		func(s *conn.Socket) {
			testbev.Echo(s.Bufferevent, func(ev actor.Event, err error) { upEvents <- actor.EventInfo{Event: ev, Err: err} })
		})
	if err != nil {
		t.Fatal(err)
	}

	// The proxy: each accepted connection relayed to a socket connected
	// to the upstream.
	proxied := make(chan *relay, 1)
	proxy, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			up, err := conn.New(base, nil, actor.CloseOnFree)
			if err != nil {
				t.Errorf("conn.New(upstream) = %v, want nil", err)
				s.Close()
				return
			}
			r, err := newRelay(base, s.Bufferevent, up.Bufferevent)
			if err != nil {
				t.Errorf("newRelay(proxy) = %v, want nil", err)
				s.Close()
				up.Close()
				return
			}
			if err := up.ConnectAddr(context.Background(), "tcp", upstream.Addr().String()); err != nil {
				t.Errorf("ConnectAddr(upstream) = %v, want nil", err)
			}
			proxied <- r
		})
	if err != nil {
		t.Fatal(err)
	}

	// The client: a TLS filter over one end of a pair, whose other end is
	// relayed onto a socket connected to the proxy.
	near, far, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	local, err := newRelay(base, far, sock.Bufferevent)
	if err != nil {
		t.Fatal(err)
	}
	if err := sock.ConnectAddr(context.Background(), "tcp", proxy.Addr().String()); err != nil {
		t.Fatal(err)
	}
	client, err := pipeline.NewTLSClient(near, clientTLS, pipeline.TLSOptions{Options: actor.CloseOnFree})
	if err != nil {
		t.Fatal(err)
	}
	in := client.In()

	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	want := testkit.PatternAt(1, 0, total)
	sent := make(chan error, 1)
	go func() {
		for off := 0; off < total; off += 16 << 10 {
			if err := client.Send(ctx, want[off:off+16<<10]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	got := make([]byte, 0, total)
	for len(got) < total {
		select {
		case p, ok := <-in:
			if !ok {
				t.Fatalf("In() closed after %d bytes, want %d; Err() = %v", len(got), total, client.Err())
			}
			got = append(got, p...)
		case <-ctx.Done():
			t.Fatalf("echoed %d bytes before %v, want %d", len(got), ctx.Err(), total)
		}
	}
	if err := testkit.Recv(t, sent, "the sender"); err != nil {
		t.Errorf("Send = %v, want nil", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo differs from what was sent at byte %d (got %d bytes, want %d)", testkit.PatternMismatch(1, 0, got), len(got), total)
	}
	state, ok := pipeline.TLSState(client)
	if !ok || !state.HandshakeComplete || state.ServerName != "upstream.test" {
		t.Errorf("TLSState(client) = %v, %v (server %q), want a completed handshake with upstream.test", ok, state.HandshakeComplete, state.ServerName)
	}
	if state.Version != tls.VersionTLS13 {
		t.Errorf("TLSState(client).Version = %x, want TLS 1.3 (%x)", state.Version, tls.VersionTLS13)
	}

	// Drain sends close_notify, which the upstream reads as a clean EOF
	// after every byte; its close then travels back through both relays.
	if err := client.Drain(ctx); err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
	if ev := testkit.Recv(t, upEvents, "the upstream's Connected"); ev.Event != actor.Connected {
		t.Errorf("upstream's first event = %v (%v), want Connected", ev.Event, ev.Err)
	}
	if ev := testkit.Recv(t, upEvents, "the upstream's EOF"); ev.Event != actor.Reading|actor.EOF {
		t.Errorf("upstream's event after the client's Drain = %v (%v), want Reading|EOF (close_notify)", ev.Event, ev.Err)
	}
	remote := testkit.Recv(t, proxied, "the proxied connection")
	testkit.Recv(t, remote.Done(), "the proxy's relay to end")
	if err := remote.Err(); err != nil {
		t.Errorf("proxy relay error = %v, want both directions to end with EOF", err)
	}
	testkit.Recv(t, local.Done(), "the local relay to end")
	for i, name := range []string{"client to upstream", "upstream to client"} {
		// TLS adds its records, so each direction moves more than the
		// payload; the proxy and the local relay carry the same stream.
		if a, b := remote.moved[i].Load(), local.moved[i].Load(); a < total || a != b {
			t.Errorf("%s: proxy moved %d bytes and local relay %d, want the same, at least %d", name, a, b, total)
		}
	}
	closeAndCheck(t, base)
}
