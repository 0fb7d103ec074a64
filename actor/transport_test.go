package actor_test

import (
	"errors"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of transport.go's BufferWriter and BufferReader contract.

// A transport whose counts do not match what it moved fails the
// bufferevent with ErrInvalid instead of losing or inventing bytes.
func TestBufferTransportBadCount(t *testing.T) {
	for _, dir := range []string{"write", "read"} {
		t.Run(dir, func(t *testing.T) {
			tr := newBufTransport(true)
			tr.lie = true
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			events := make(chan error, 4)
			b.SetCallbacks(actor.Callbacks{Event: func(s *actor.Session, ev actor.Event, err error) {
				if ev&actor.Error != 0 {
					events <- err
				}
			}})
			if dir == "write" {
				b.Write([]byte("hello"))
			} else {
				b.Enable(actor.Read)
				var src actor.Buffer
				src.WriteString("hello")
				tr.in <- &src
			}
			if err := testkit.Recv(t, events, "an Error event"); !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("Error event with %v, want ErrInvalid", err)
			}
		})
	}
}
