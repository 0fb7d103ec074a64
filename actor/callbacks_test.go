package actor_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of callbacks.go: panics in callbacks and in Do, deferred events,
// and events that come before their callback or channel.

// An event callback that panics while handling EOF closes the bufferevent
// with the panic as its cause, not EOF (item 11).
func TestEventPanicAfterEOF(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	b.SetCallbacks(actor.Callbacks{
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.EOF != 0 {
				panic("boom at EOF")
			}
		},
	})
	b.Enable(actor.Read)
	a.Flush(actor.Write, actor.Finished)
	testkit.Recv(t, b.Done(), "b to stop after its event callback panicked")
	err := b.Err()
	var pe *actor.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, actor.ErrPanic) || pe.Value != "boom at EOF" {
		t.Fatalf("Err() after a panic at EOF = %v, want the *PanicError", err)
	}
}

// Do returns the panic of its function (item 11).
func TestDoPanic(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	err := a.Do(func(*actor.Session) { panic("boom in Do") })
	var pe *actor.PanicError
	if !errors.Is(err, actor.ErrPanic) || !errors.As(err, &pe) || pe.Value != "boom in Do" {
		t.Fatalf("Do(panicking fn) = %v, want the *PanicError", err)
	}
	testkit.Recv(t, a.Done(), "a to stop after Do's function panicked")
	if !errors.Is(a.Err(), actor.ErrPanic) {
		t.Errorf("Err() after Do panicked = %v, want ErrPanic", a.Err())
	}
	if err := a.Do(func(*actor.Session) {}); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Do after the panic = %v, want ErrClosed", err)
	}
}

// A panicking callback closes only its own bufferevent, with an Error event
// carrying the panic; the partner sees EOF and goes on.
func TestPanickingCallback(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	events := b.Events()
	b.SetCallbacks(actor.Callbacks{Read: func(*actor.Session) { panic("boom") }})
	b.Enable(actor.Read)
	aEvents := a.Events()
	a.Enable(actor.Read)
	a.Write([]byte("x"))
	ev := testkit.Recv(t, events, "error event")
	var perr *actor.PanicError
	if ev.Event != actor.Error || !errors.As(ev.Err, &perr) || perr.Value != "boom" || !errors.Is(ev.Err, actor.ErrPanic) {
		t.Fatalf("event = %v %v, want Error with the panic", ev.Event, ev.Err)
	}
	testkit.Recv(t, b.Done(), "panicked bufferevent to stop")
	if !errors.As(b.Err(), &perr) {
		t.Errorf("Err() = %v, want the *PanicError", b.Err())
	}
	if ev := testkit.Recv(t, aEvents, "partner EOF"); ev.Event != actor.Reading|actor.EOF {
		t.Errorf("partner event = %v, want Reading|EOF", ev.Event)
	}
	if err := a.Write([]byte("still alive")); err != nil {
		t.Errorf("partner Write() = %v", err)
	}
}

// A panic in the event callback itself is reported on the Events channel
// and in Err, and does not loop.
func TestPanickingEventCallback(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	b.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { panic(io.ErrShortWrite) }})
	b.Enable(actor.Read)
	a.Close()
	testkit.Recv(t, b.Done(), "stop")
	// EOF came first, but a panic handling it is a failure: it is the
	// cause (issue 13, item 11).
	var perr *actor.PanicError
	if err := b.Err(); !errors.As(err, &perr) || !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("Err() = %v, want the *PanicError", err)
	}
}

// Deferred events coalesce: bits are ORed into one call.
func TestDeferredCoalescing(t *testing.T) {
	b, err := actor.New(nil, nil, actor.DeferCallbacks)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan actor.Event, 2)
	b.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, _ error) { got <- ev }})
	b.Do(func(s *actor.Session) {
		s.TriggerEvent(actor.Reading|actor.EOF, 0)
		s.TriggerEvent(actor.Writing|actor.Error, 0)
	})
	if ev := testkit.Recv(t, got, "event"); ev != actor.Reading|actor.Writing|actor.EOF|actor.Error {
		t.Errorf("coalesced event = %v", ev)
	}
	if evs := testkit.Pending(got); len(evs) > 0 {
		t.Errorf("a second event %v; deferred events should coalesce", evs[0])
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
	if evs := testkit.Pending(got); len(evs) > 0 {
		t.Fatalf("a second SetCallbacks delivered %v again", evs[0])
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
	if evs := testkit.Pending(got); len(evs) > 0 {
		t.Fatalf("an event that found no callback came later: %v", evs[0])
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

// panicStage is a stage that moves bytes unchanged, or panics with its
// value in the method named by in: Process (once it has bytes to move),
// Buffered, which the actor calls beside Process to learn what the stage
// holds back, or Passes, which a socket's actor calls before it lends its
// sink (see actor.Passer). Buffered and Passes panic only once Process
// has had bytes: called before, the panic could stop the bufferevent
// before the test has set its callbacks, which would then never hear of
// it (Err still would).
type panicStage struct {
	value, in string
	armed     atomic.Bool // Process has had bytes
}

func (p *panicStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	if src.Len() > 0 {
		if p.in == "Process" {
			panic(p.value)
		}
		p.armed.Store(true)
	}
	if limit >= 0 {
		_, err := dst.MoveFromN(src, limit)
		return actor.StageOK, err
	}
	return actor.StageOK, dst.MoveFrom(src)
}

func (p *panicStage) Buffered() int {
	if p.in == "Buffered" && p.armed.Load() {
		panic(p.value)
	}
	return 0
}

func (p *panicStage) Passes() bool {
	if p.in == "Passes" && p.armed.Load() {
		panic(p.value)
	}
	return false
}

// A panic in any piece of user code a bufferevent runs closes that
// bufferevent only, with an Error event and Err carrying the
// *PanicError, and closes its connection (CloseOnFree), so that the peer
// reads its end: a read, write or event callback, run at once or
// deferred to the Base's turn (DeferCallbacks), an input or output
// stage's Process, and a stage's Buffered and Passes. Another bufferevent of the
// same Base, deferring its callbacks, echoes as before afterwards: the
// Base's dispatcher survives too.
func TestPanicInEveryUserHook(t *testing.T) {
	type setup struct {
		opts    actor.Option
		in, out actor.Stage
		cbs     actor.Callbacks
		// start makes the bufferevent run the hook, peer being the
		// other end of its connection.
		start func(b *actor.Bufferevent, peer *net.TCPConn)
	}
	readSome := func(b *actor.Bufferevent, peer *net.TCPConn) {
		b.Enable(actor.Read)
		peer.Write([]byte("x"))
	}
	writeSome := func(b *actor.Bufferevent, peer *net.TCPConn) { b.Write([]byte("x")) }
	// Passes is asked when the actor, reading, waits in its socket.
	readWrite := func(b *actor.Bufferevent, peer *net.TCPConn) {
		b.Enable(actor.Read)
		b.Write([]byte("x"))
	}
	endPeer := func(b *actor.Bufferevent, peer *net.TCPConn) {
		b.Enable(actor.Read)
		peer.CloseWrite()
	}
	boom := func(v string) func(*actor.Session) { return func(*actor.Session) { panic(v) } }
	for _, tc := range []struct {
		name string
		setup
	}{
		{"read callback", setup{cbs: actor.Callbacks{Read: boom("read callback")}, start: readSome}},
		{"write callback", setup{cbs: actor.Callbacks{Write: boom("write callback")}, start: writeSome}},
		{"event callback", setup{cbs: actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { panic("event callback") }}, start: endPeer}},
		{"deferred read callback", setup{opts: actor.DeferCallbacks, cbs: actor.Callbacks{Read: boom("deferred read callback")}, start: readSome}},
		{"deferred write callback", setup{opts: actor.DeferCallbacks, cbs: actor.Callbacks{Write: boom("deferred write callback")}, start: writeSome}},
		{"deferred event callback", setup{opts: actor.DeferCallbacks, cbs: actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { panic("deferred event callback") }}, start: endPeer}},
		{"input stage", setup{in: &panicStage{value: "input stage", in: "Process"}, start: readSome}},
		{"output stage", setup{out: &panicStage{value: "output stage", in: "Process"}, start: writeSome}},
		{"input stage's Buffered", setup{in: &panicStage{value: "input stage's Buffered", in: "Buffered"}, start: readSome}},
		{"output stage's Buffered", setup{out: &panicStage{value: "output stage's Buffered", in: "Buffered"}, start: writeSome}},
		{"output stage's Passes", setup{out: &panicStage{value: "output stage's Passes", in: "Passes"}, start: readWrite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			peer, c := testconn.TCPConns(t)
			b, err := actor.NewStaged(base, c, actor.CloseOnFree|tc.opts, tc.in, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			events := make(chan actor.EventInfo, 8)
			if tc.cbs.Event == nil {
				tc.cbs.Event = func(_ *actor.Session, ev actor.Event, err error) { events <- actor.EventInfo{Event: ev, Err: err} }
			}
			b.SetCallbacks(tc.cbs)
			tc.start(b, peer)
			testkit.Recv(t, b.Done(), "the bufferevent to stop after its "+tc.name+" panicked")
			var pe *actor.PanicError
			if err := b.Err(); !errors.As(err, &pe) || !errors.Is(err, actor.ErrPanic) || pe.Value != tc.name {
				t.Fatalf("Err() = %v, want the *PanicError of %q", err, tc.name)
			}
			if !strings.HasPrefix(tc.name, "event") && !strings.HasPrefix(tc.name, "deferred event") {
				ev := testkit.Recv(t, events, "the Error event")
				if ev.Event&actor.Error == 0 || !errors.As(ev.Err, &pe) || pe.Value != tc.name {
					t.Errorf("event %v %v, want Error with the *PanicError", ev.Event, ev.Err)
				}
			}
			peer.SetReadDeadline(time.Now().Add(testkit.WaitTime))
			if _, err := io.Copy(io.Discard, peer); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the peer read %v, want its end (EOF or a reset)", err)
			}

			// The Base and another bufferevent of it go on.
			x, y, err := actor.NewPair(base, actor.DeferCallbacks)
			if err != nil {
				t.Fatalf("NewPair after the panic = %v", err)
			}
			if err := testbev.Echo(y, nil); err != nil {
				t.Fatal(err)
			}
			if err := x.Send(context.Background(), []byte("still alive")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len("still alive"))
			if _, err := io.ReadFull(&chanReader{in: x.In()}, got); err != nil || string(got) != "still alive" {
				t.Errorf("echo after the panic: %q, %v", got, err)
			}
		})
	}
}
