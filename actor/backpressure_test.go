package actor_test

import (
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// TestEchoBackpressure: a read callback that answers what it reads (an
// echo) against a peer that sends without reading. Reading pauses once
// the output holds the write high watermark, so the output stays near it
// instead of taking all the peer sends, and the peer's writes block, as
// they would against goroutine-per-connection code.
func TestEchoBackpressure(t *testing.T) {
	for _, high := range []int{0, 16 << 10} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		b, err := actor.New(nil, c, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetWatermark(actor.Write, 0, high); err != nil {
			t.Fatal(err)
		}
		b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) }})
		b.Enable(actor.Read)
		// The deadline only bounds the test: the write blocks once the
		// kernel buffers are full and bev stops reading.
		peer.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		sent, _ := peer.Write(make([]byte, 64<<20))
		limit := high
		if limit == 0 {
			limit = actor.DefaultChannelHighWatermark
		}
		if out := b.OutputLen(); out > limit {
			t.Errorf("high %d: output holds %d bytes after the peer sent %d, want at most %d", high, out, sent, limit)
		}
		if sent >= 64<<20 {
			t.Errorf("high %d: the peer sent all %d bytes without reading, want its writes to block", high, sent)
		}
		b.Close()
		peer.Close()
	}
}
