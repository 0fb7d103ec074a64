package actor_test

import (
	"io"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of input.go: an end of stream met while reading is disabled.

// gatedTransport's Read waits until the test hands it a result: the bytes
// it returns and the error that ends the stream.
type gatedTransport struct {
	reading chan struct{} // receives when Read is waiting
	results chan gatedRead
	closed  chan struct{}
	once    sync.Once
}

type gatedRead struct {
	p   []byte
	err error
}

func newGatedTransport() *gatedTransport {
	return &gatedTransport{reading: make(chan struct{}, 1), results: make(chan gatedRead), closed: make(chan struct{})}
}

func (g *gatedTransport) Read(p []byte) (int, error) {
	testkit.Signal(g.reading)
	select {
	case r := <-g.results:
		return copy(p, r.p), r.err
	case <-g.closed:
		return 0, io.ErrClosedPipe
	}
}

func (g *gatedTransport) Write(p []byte) (int, error) { return len(p), nil }

func (g *gatedTransport) Close() error {
	g.once.Do(func() { close(g.closed) })
	return nil
}

// An EOF that a read already under way meets after Disable(Read) is
// reported only once reading is enabled again, after the bytes that came
// with it: libevent, which does not read while reading is disabled,
// notices neither before then.
func TestEOFWhileReadingDisabled(t *testing.T) {
	// In a bubble, synctest.Wait returns once the reader loop has handed
	// over the read and the actor has taken it and has nothing left to
	// do: the moment to check that it reported nothing, with no polling.
	synctest.Test(t, func(t *testing.T) {
		g := newGatedTransport()
		b, err := actor.New(testbev.NewBase(t), g, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		type seen struct {
			ev   actor.Event // 0 for the read callback
			data string
		}
		got := make(chan seen, 4)
		b.SetCallbacks(actor.Callbacks{
			Read: func(s *actor.Session) { got <- seen{data: string(testkit.DrainAll(t, s.Input()))} },
			Event: func(s *actor.Session, ev actor.Event, err error) {
				got <- seen{ev: ev}
			},
		})
		b.Enable(actor.Read)
		testkit.Recv(t, g.reading, "the reader loop's read")
		b.Disable(actor.Read)
		g.results <- gatedRead{[]byte("tail"), io.EOF}
		synctest.Wait()
		if n := b.InputLen(); n != len("tail") {
			t.Fatalf("InputLen() = %d once the actor is idle, want %d: the read's bytes did not reach the input", n, len("tail"))
		}
		if early := testkit.Pending(got); len(early) > 0 {
			t.Fatalf("reading disabled, yet the bufferevent reported %+v", early[0])
		}
		b.Enable(actor.Read)
		if s := testkit.Recv(t, got, "the read callback"); s.ev != 0 || s.data != "tail" {
			t.Fatalf("first after Enable: %+v, want the read callback with \"tail\"", s)
		}
		if s := testkit.Recv(t, got, "the EOF"); s.ev != actor.Reading|actor.EOF {
			t.Fatalf("second after Enable: %+v, want Reading|EOF", s)
		}
	})
}
