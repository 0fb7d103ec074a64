package actor_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// TestFinishWhileConnecting: a Flush(Write, Finished) made while a connect
// is in flight applies to the connection it makes: the peer reads every
// byte, then EOF. It used to be reset when the transport arrived, so the
// peer never saw EOF and a Drain begun while connecting hung.
func TestFinishWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err := actor.New(nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release := make(chan struct{})
	if err := b.Connect(context.Background(), func(ctx context.Context) (actor.Transport, error) {
		select {
		case <-release:
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatal(err)
	}
	// The flush has been handled, and the dial is still held.
	if err := b.Do(func(*actor.Session) {}); err != nil {
		t.Fatal(err)
	}
	close(release)
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(peer)
	if string(got) != "hello" || err != nil {
		t.Errorf("peer ReadAll = %q, %v, want %q, nil (EOF after the bytes)", got, err, "hello")
	}
}
