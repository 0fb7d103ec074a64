package actor_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// Flush(Write, Finished) asked for while a connect is in flight is kept
// when the transport arrives: the output is written and then the stream
// is finished, so the peer reads the data and EOF (a Drain waiting for
// that no longer hangs until its context ends).
func TestFinishWhileConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer ln.Close()
	release := make(chan struct{})
	b, err := actor.New(nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	defer b.Close()
	b.Connect(context.Background(), func(ctx context.Context) (actor.Transport, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	})
	b.Write([]byte("data"))
	b.Flush(actor.Write, actor.Finished)
	if err := b.Do(func(*actor.Session) {}); err != nil { // the flush has been handled
		t.Fatalf("Do = %v", err)
	}
	close(release)
	peer, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept = %v", err)
	}
	defer peer.Close()
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(peer)
	if string(got) != "data" || err != nil {
		t.Fatalf("peer read %q, %v, want %q and EOF", got, err, "data")
	}
}
