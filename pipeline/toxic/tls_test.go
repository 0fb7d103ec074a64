package toxic_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/pipeline/toxic"
)

// tlsServer runs a crypto/tls server over raw: it says hello after the
// handshake, then reads until an error, which it sends on the channel
// returned (nil for a clean EOF).
func tlsServer(t *testing.T, raw net.Conn, cfg *tls.Config) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(raw, cfg)
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write([]byte("hello")); err != nil {
			done <- err
			return
		}
		_, err := io.Copy(io.Discard, s)
		done <- err
	}()
	t.Cleanup(func() { raw.Close() })
	return done
}

// TestResetPeerOverTLS: a reset_peer toxic over a TLS connection resets
// the TCP connection under it, so the peer sees ECONNRESET, not a
// close_notify or a FIN: over bev's TLS socket (NewFilter) and over a
// crypto/tls connection (WrapConn).
func TestResetPeerOverTLS(t *testing.T) {
	scfg, ccfg := testcert.Configs(t, "bev.test")
	wantReset := func(t *testing.T, served <-chan error) {
		t.Helper()
		select {
		case err := <-served:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("server read: %v, want ECONNRESET", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("server saw no end after 10s")
		}
	}
	t.Run("socket", func(t *testing.T) {
		base := testbev.NewBase(t)
		cli, srv := testconn.Pair(t, "tcp")
		served := tlsServer(t, srv, scfg)
		s, err := tlsconn.New(base, cli, ccfg, tlsconn.Connecting, actor.CloseOnFree)
		must(t, err)
		set := new(toxic.Set)
		must(t, set.Add(toxic.New("rst", toxic.Upstream, &toxic.ResetPeer{})))
		f, err := toxic.NewFilter(s.Bufferevent, set, toxic.Downstream, actor.CloseOnFree)
		must(t, err)
		defer f.Close()
		got, err := collect(t, f, len("hello"), 10*time.Second)
		if err != nil || string(joined(got)) != "hello" {
			t.Fatalf("read %q, %v; want hello", joined(got), err)
		}
		must(t, f.Write([]byte("x")))
		wantReset(t, served)
		<-f.Done()
		if err := f.Err(); !errors.Is(err, toxic.ErrReset) {
			t.Errorf("filter's Err() = %v, want ErrReset", err)
		}
	})
	t.Run("wrapconn", func(t *testing.T) {
		base := testbev.NewBase(t)
		cli, srv := testconn.Pair(t, "tcp")
		served := tlsServer(t, srv, scfg)
		tc := tls.Client(cli, ccfg)
		set := new(toxic.Set)
		must(t, set.Add(toxic.New("rst", toxic.Upstream, &toxic.ResetPeer{})))
		c, err := toxic.WrapConn(base, tc, set)
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, len("hello"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read %q, %v; want hello", buf, err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		wantReset(t, served)
		if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client read: %v, want ECONNRESET", err)
		}
	})
}
