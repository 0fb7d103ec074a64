package actor_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of source.go: reads from a BufferReader (chunkSource).

// A read that brings more chunks than one hand-off to the actor carries
// arrives whole and in order, every read within its maximum, and EOF
// comes after the last byte.
func TestBufferReader(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var (
		mu  sync.Mutex
		got []byte
	)
	eof := make(chan []byte, 1)
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			mu.Lock()
			got = append(got, testkit.DrainAll(t, s.Input())...)
			mu.Unlock()
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.EOF != 0 {
				mu.Lock()
				eof <- append([]byte(nil), got...)
				mu.Unlock()
			}
		},
	})
	b.SetMaxRead(20000)
	b.Enable(actor.Read)
	var want []byte
	for round := range 3 {
		var src actor.Buffer
		for i := range 100 { // 100 chunks of 100 bytes: more than one hand-off
			p := bytes.Repeat([]byte{byte(round*100 + i)}, 100)
			want = append(want, p...)
			src.AppendOwned(p)
		}
		big := testkit.Pattern(50000) // over the maximum: split by MoveFromN
		want = append(want, big...)
		src.Write(big)
		tr.in <- &src
	}
	close(tr.eof)
	if got := testkit.Recv(t, eof, "EOF"); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes before EOF that differ from the %d sent", len(got), len(want))
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.calls {
		if c.kind == "read" && (c.n > c.max || c.max > 20000) {
			t.Errorf("a read of %d bytes with max %d, per-read maximum 20000", c.n, c.max)
		}
	}
}
