package actor_test

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// heldTransport accepts every write at once and holds it "downstream"
// until release, reporting what it holds through Buffered and waking the
// bufferevent through NotifyProgress, as a filter's view of its
// underlying bufferevent does.
type heldTransport struct {
	mu   sync.Mutex // guards following
	held int
	wake func()

	closed chan struct{}
	once   sync.Once
}

func newHeldTransport() *heldTransport {
	return &heldTransport{closed: make(chan struct{})}
}

func (h *heldTransport) Read(p []byte) (int, error) {
	<-h.closed
	return 0, io.EOF
}

func (h *heldTransport) Write(p []byte) (int, error) {
	h.mu.Lock()
	h.held += len(p)
	h.mu.Unlock()
	return len(p), nil
}

func (h *heldTransport) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *heldTransport) Buffered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

func (h *heldTransport) NotifyProgress(wake func()) {
	h.mu.Lock()
	h.wake = wake
	h.mu.Unlock()
}

// release lets n held bytes move on and wakes the bufferevent.
func (h *heldTransport) release(n int) {
	h.releaseQuietly(n)
	h.mu.Lock()
	wake := h.wake
	h.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// releaseQuietly lets n held bytes move on without a signal, as a
// filter's underlying that drains but not to its low watermark.
func (h *heldTransport) releaseQuietly(n int) {
	h.mu.Lock()
	h.held -= n
	h.mu.Unlock()
}

func timeouts(evs <-chan actor.EventInfo) []actor.Event {
	var got []actor.Event
	for {
		select {
		case e := <-evs:
			got = append(got, e.Event)
		default:
			return got
		}
	}
}

// The write timeout runs while a buffered transport holds bytes, Progress
// restarts it, and it stops once the transport holds nothing.
func TestWriteTimeoutCoversTransportBuffer(t *testing.T) {
	tests := []struct {
		name    string
		release func(h *heldTransport) // run at 80 ms
		want    []actor.Event          // at 150 ms, then at 250 ms
		later   []actor.Event
	}{
		{"stuck", func(*heldTransport) {}, []actor.Event{actor.Timeout | actor.Writing}, nil},
		{"progress", func(h *heldTransport) { h.release(3) }, nil, []actor.Event{actor.Timeout | actor.Writing}},
		{"quiet progress", func(h *heldTransport) { h.releaseQuietly(3) }, nil, []actor.Event{actor.Timeout | actor.Writing}},
		{"drained", func(h *heldTransport) { h.release(7) }, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHeldTransport()
				b, err := actor.New(nil, h, actor.CloseOnFree)
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				defer b.Close()
				evs := b.Events()
				b.SetTimeouts(0, 100*time.Millisecond)
				b.Write([]byte("1234567"))
				time.Sleep(80 * time.Millisecond)
				tc.release(h)
				time.Sleep(70 * time.Millisecond)
				synctest.Wait()
				if got := timeouts(evs); len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
					t.Fatalf("events by 150 ms = %v, want %v", got, tc.want)
				}
				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
				if got := timeouts(evs); len(got) != len(tc.later) || (len(got) == 1 && got[0] != tc.later[0]) {
					t.Fatalf("events from 150 to 250 ms = %v, want %v", got, tc.later)
				}
			})
		})
	}
}

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
	// The actor has taken the read once the input shows its bytes.
	deadline := time.Now().Add(testkit.WaitTime)
	for b.InputLen() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the read's bytes did not reach the input")
		}
		runtime.Gosched()
	}
	select {
	case s := <-got:
		t.Fatalf("reading disabled, yet the bufferevent reported %+v", s)
	default:
	}
	b.Enable(actor.Read)
	if s := testkit.Recv(t, got, "the read callback"); s.ev != 0 || s.data != "tail" {
		t.Fatalf("first after Enable: %+v, want the read callback with \"tail\"", s)
	}
	if s := testkit.Recv(t, got, "the EOF"); s.ev != actor.Reading|actor.EOF {
		t.Fatalf("second after Enable: %+v, want Reading|EOF", s)
	}
}

// connectNow connects b to one end of a net.Pipe and returns once the
// actor has reported the connect (the Connected event has been emitted).
func connectNow(t *testing.T, b *actor.Bufferevent) {
	t.Helper()
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c2.Close() })
	err := b.Connect(context.Background(), func(context.Context) (actor.Transport, error) { return c1, nil })
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testkit.WaitTime)
	for b.Transport() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the connect did not complete")
		}
		runtime.Gosched()
	}
	// A turn of the actor's after the one that attached the transport:
	// the Connected event has been emitted by then.
	if err := b.Do(func(*actor.Session) {}); err != nil {
		t.Fatal(err)
	}
}

// le-proxy connects and then sets its callbacks; in libevent that is safe
// because callbacks wait for the loop. In bev the events that come before
// the first SetCallbacks are kept for it.
func TestEventsBeforeFirstCallbacks(t *testing.T) {
	b, err := actor.New(testbev.NewBase(t), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	connectNow(t, b)
	got := make(chan actor.Event, 4)
	cbs := actor.Callbacks{Event: func(s *actor.Session, ev actor.Event, err error) { got <- ev }}
	b.SetCallbacks(cbs)
	if ev := testkit.Recv(t, got, "the Connected event kept for the first callbacks"); ev != actor.Connected {
		t.Fatalf("event %v, want Connected", ev)
	}
	// Only the first SetCallbacks delivers: setting them again does not
	// repeat the event.
	b.SetCallbacks(cbs)
	b.Do(func(*actor.Session) {})
	select {
	case ev := <-got:
		t.Fatalf("a second SetCallbacks delivered %v again", ev)
	default:
	}
}

// Once callbacks are set, an event with no Event callback is dropped, as
// in libevent: setting one later does not bring it back.
func TestEventsWithoutEventCallbackDropped(t *testing.T) {
	b, err := actor.New(testbev.NewBase(t), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	b.SetCallbacks(actor.Callbacks{})
	connectNow(t, b)
	got := make(chan actor.Event, 4)
	b.SetCallbacks(actor.Callbacks{Event: func(s *actor.Session, ev actor.Event, err error) { got <- ev }})
	b.Do(func(*actor.Session) {})
	select {
	case ev := <-got:
		t.Fatalf("an event that found no callback came later: %v", ev)
	default:
	}
}

// A channel user who connects first and asks for Events after gets the
// events that came in between.
func TestEventsBeforeEventsChannel(t *testing.T) {
	b, err := actor.New(testbev.NewBase(t), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	connectNow(t, b)
	if ev := testkit.Recv(t, b.Events(), "the Connected event kept for the Events channel"); ev.Event != actor.Connected {
		t.Fatalf("event %v, want Connected", ev.Event)
	}
}
