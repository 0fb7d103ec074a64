package actor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Close from 100 goroutines at once returns the same result everywhere.
func TestConcurrentClose(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	results := make([]error, 100)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = a.Close() })
	}
	wg.Wait()
	for i, err := range results {
		if err != results[0] {
			t.Fatalf("Close() #%d = %v, #0 = %v", i, err, results[0])
		}
	}
	if err := a.Close(); err != results[0] {
		t.Errorf("a later Close() = %v, want %v", err, results[0])
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

func TestBadArguments(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"WriteBuffer(nil)", a.WriteBuffer(nil)},
		{"ReadBuffer(nil)", a.ReadBuffer(nil)},
		{"SetWatermark negative", a.SetWatermark(actor.Read, -1, 0)},
		{"SetWatermark inverted", a.SetWatermark(actor.Write, 10, 5)},
		{"SetWatermark direction", a.SetWatermark(0, 0, 0)},
		{"Flush mode", a.Flush(actor.Write, actor.FlushMode(7))},
		{"Flush direction", a.Flush(actor.Dir(8), actor.Normal)},
		{"Enable direction", a.Enable(actor.Dir(4))},
		{"Disable direction", a.Disable(0)},
		{"Trigger option", a.Trigger(actor.Read, 1)},
		{"TriggerEvent option", a.TriggerEvent(actor.EOF, 2)},
		{"SetTimeouts negative", a.SetTimeouts(-time.Second, 0)},
		{"SetMaxRead negative", a.SetMaxRead(-1)},
		{"SetPriority", a.SetPriority(1)},
		{"Do(nil)", a.Do(nil)},
		{"Connect(nil)", a.Connect(context.Background(), nil)},
	} {
		if !errors.Is(tc.err, actor.ErrInvalid) {
			t.Errorf("%s = %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	if _, err := actor.New(nil, nil, actor.UnlockCallbacks); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(UnlockCallbacks) = %v, want ErrInvalid", err)
	}
	if _, err := actor.New(nil, nil, 1<<10); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(unknown option) = %v, want ErrInvalid", err)
	}
	if _, err := actor.NewBaseConfig(actor.BaseConfig{Priorities: -1}); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewBaseConfig(-1 priorities) = %v, want ErrInvalid", err)
	}
	b, err := actor.New(nil, nil, actor.UnlockCallbacks|actor.DeferCallbacks|actor.ThreadSafe)
	if err != nil {
		t.Fatalf("New(Unlock|Defer|ThreadSafe) = %v", err)
	}
	b.Close()
}

// Every method of a closed bufferevent returns promptly with ErrClosed or
// the zero value.
func TestClosedMethods(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	a.Close()
	errs := map[string]error{
		"Write":        a.Write([]byte("x")),
		"WriteBuffer":  a.WriteBuffer(new(actor.Buffer)),
		"ReadBuffer":   a.ReadBuffer(new(actor.Buffer)),
		"Do":           a.Do(func(*actor.Session) {}),
		"Enable":       a.Enable(actor.Read),
		"Disable":      a.Disable(actor.Read),
		"SetWatermark": a.SetWatermark(actor.Read, 0, 10),
		"SetTimeouts":  a.SetTimeouts(time.Second, 0),
		"Flush":        a.Flush(actor.Write, actor.Finished),
		"Trigger":      a.Trigger(actor.Read, 0),
		"TriggerEvent": a.TriggerEvent(actor.EOF, 0),
		"Connect":      a.Connect(context.Background(), func(context.Context) (actor.Transport, error) { return nil, nil }),
		"SetTransport": a.SetTransport(nil),
		"Send":         a.Send(context.Background(), []byte("x")),
		"Drain":        a.Drain(context.Background()),
	}
	if _, err := a.TryRead(make([]byte, 4)); err != nil {
		errs["Read"] = err
	}
	for name, err := range errs {
		if name == "Drain" {
			if err != nil {
				t.Errorf("Drain() on a closed bufferevent = %v, want Close's nil", err)
			}
			continue
		}
		if !errors.Is(err, actor.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, ok := <-a.In(); ok {
		t.Errorf("In() after Close is not closed")
	}
	if _, ok := <-a.Events(); ok {
		t.Errorf("Events() after Close is not closed")
	}
	if a.Enabled() != 0 || a.Transport() != nil || a.Partner() != nil || a.InputLen() != 0 {
		t.Errorf("getters after Close are not zero")
	}
	if !errors.Is(a.Err(), actor.ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", a.Err())
	}
}

// The channel view: Send on one side, In on the other, EOF closes In.
func TestChannels(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	ctx := context.Background()
	in := b.In()
	if b.Enabled()&actor.Read == 0 {
		t.Errorf("In() did not enable reading")
	}
	var want bytes.Buffer
	for i := range 100 {
		msg := fmt.Appendf(nil, "message %d;", i)
		want.Write(msg)
		if err := a.Send(ctx, msg); err != nil {
			t.Fatalf("Send() = %v", err)
		}
	}
	a.Flush(actor.Write, actor.Finished)
	var got bytes.Buffer
	for chunk := range in {
		got.Write(chunk)
	}
	if got.String() != want.String() {
		t.Errorf("In() delivered %q, want %q", got.String(), want.String())
	}
	if !errors.Is(b.Err(), io.EOF) {
		t.Errorf("Err() after In closed = %v, want io.EOF", b.Err())
	}
}

// Send blocks at the write high watermark and honours its context.
func TestSendBackpressure(t *testing.T) {
	a, _ := testbev.NewPair(t, 0) // the partner never reads
	a.SetWatermark(actor.Write, 0, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	sent := 0
	var err error
	for sent < 1<<20 {
		if err = a.Send(ctx, make([]byte, 512)); err != nil {
			break
		}
		sent += 512
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send() kept succeeding (%d bytes) or failed oddly: %v", sent, err)
	}
	// At most the high watermark waits in output, plus the batch the
	// writer loop holds and one send's worth.
	if limit := 1024 + actor.DefaultMaxWrite + 512; sent > limit {
		t.Errorf("Send accepted %d bytes with nobody reading, want <= %d", sent, limit)
	}
}

// Drain writes every byte, half-closes, and closes.
func TestDrain(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	in := b.In()
	payload := testkit.Pattern(100000)
	a.Write(payload)
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(context.Background()) }()
	var got bytes.Buffer
	for chunk := range in {
		got.Write(chunk)
	}
	if err := testkit.Recv(t, drained, "Drain"); err != nil {
		t.Errorf("Drain() = %v", err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Errorf("partner received %d bytes, want %d", got.Len(), len(payload))
	}
}

// Drain gives up when its context ends, and still closes.
func TestDrainTimeout(t *testing.T) {
	a, _ := testbev.NewPair(t, 0) // the partner never reads
	a.Write(testkit.Pattern(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain() = %v, want DeadlineExceeded", err)
	}
	testkit.Recv(t, a.Done(), "closed after a failed drain")
}

// Do runs on the actor with the buffers in hand; Read and ReadBuffer work
// from other goroutines.
func TestDoAndRead(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	arrived := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		if s.Input().Len() == 10 {
			arrived <- struct{}{}
		}
	}})
	b.Enable(actor.Read)
	a.Write([]byte("0123456789"))
	testkit.Recv(t, arrived, "10 bytes")
	var n int
	b.Do(func(s *actor.Session) { n = s.Input().Len() })
	if n != 10 {
		t.Fatalf("Do saw %d bytes, want 10", n)
	}
	p := make([]byte, 4)
	if n, err := b.TryRead(p); n != 4 || err != nil || string(p) != "0123" {
		t.Errorf("Read() = %d, %v, %q", n, err, p)
	}
	var rest actor.Buffer
	if err := b.ReadBuffer(&rest); err != nil || string(testkit.DrainAll(t, &rest)) != "456789" {
		t.Errorf("ReadBuffer() = %v", err)
	}
}

// Two bufferevents whose callbacks call each other's methods relay many
// thousands of messages both ways without deadlock (le-proxy's shape).
func TestRelayNoDeadlock(t *testing.T) {
	base := testbev.NewBase(t)
	c1, s1, _ := actor.NewPair(base, 0)
	s2, c2, _ := actor.NewPair(base, 0)
	relay := func(from, to *actor.Bufferevent) {
		from.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
			var buf actor.Buffer
			s.ReadBuffer(&buf)
			to.WriteBuffer(&buf)
			to.SetWatermark(actor.Write, 0, 1<<16)
			s.Disable(actor.Read)
			s.Enable(actor.Read)
			to.Enable(actor.Read)
		}})
		from.Enable(actor.Read)
	}
	relay(s1, s2)
	relay(s2, s1)
	const rounds = 5000
	done := make(chan struct{})
	// c1 sends a byte, c2 echoes it, c1 counts and sends the next.
	count := 0
	c2.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { s.WriteBuffer(s.Input()) }})
	c1.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		count += s.Input().Len()
		s.Input().Drain(s.Input().Len())
		if count == rounds {
			close(done)
			return
		}
		s.Write([]byte{1})
	}})
	c1.Enable(actor.Read)
	c2.Enable(actor.Read)
	c1.Write([]byte{1})
	testkit.Recv(t, done, fmt.Sprintf("%d round trips", rounds))
}

// A bufferevent runs exactly two goroutines (actor, reader) until its
// first write, three (and the writer loop) after it, and none after Close;
// a Base adds one dispatcher.
func TestGoroutinesPerBufferevent(t *testing.T) {
	count := func() map[string]int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		m := map[string]int{}
		for _, g := range strings.Split(string(buf), "\n\n") {
			for _, fn := range []string{"actorState).run", "transportIO).readLoop", "transportIO).writeLoop", "Base).dispatch"} {
				if strings.Contains(g, "actor.(*"+fn) {
					m[fn]++
				}
			}
		}
		return m
	}
	// A goroutine shows its function only once it has been scheduled;
	// give the new ones a bounded number of chances to start.
	settle := func(want map[string]int) map[string]int {
		got := count()
		for i := 0; i < 10000 && fmt.Sprint(got) != fmt.Sprint(want); i++ {
			runtime.Gosched()
			got = count()
		}
		return got
	}
	base := actor.NewBase()
	const pairs = 10
	var bevs []*actor.Bufferevent
	for range pairs {
		a, b, _ := actor.NewPair(base, 0)
		bevs = append(bevs, a, b)
	}
	want := map[string]int{"actorState).run": 2 * pairs, "transportIO).readLoop": 2 * pairs, "Base).dispatch": 1}
	got := settle(want)
	for fn, n := range want {
		if got[fn] != n {
			t.Errorf("before writing: %s goroutines = %d, want %d", fn, got[fn], n)
		}
	}
	if got["transportIO).writeLoop"] != 0 {
		t.Errorf("before writing: %d writer loops, want none", got["transportIO).writeLoop"])
	}
	// One byte each way over every pair starts every writer loop.
	for _, b := range bevs {
		b.Enable(actor.Read)
		b.Write([]byte{1})
	}
	for _, b := range bevs {
		select {
		case <-b.In():
		case <-time.After(10 * time.Second):
			t.Fatal("a byte did not cross its pair within 10 s")
		}
	}
	want["transportIO).writeLoop"] = 2 * pairs
	got = settle(want)
	for fn, n := range want {
		if fn != "Base).dispatch" && got[fn] != n {
			t.Errorf("after writing: %s goroutines = %d, want %d", fn, got[fn], n)
		}
	}
	if got["Base).dispatch"] != 1 {
		t.Errorf("dispatcher goroutines = %d, want 1", got["Base).dispatch"])
	}
	base.Close()
	for _, b := range bevs {
		select {
		case <-b.Done():
		default:
			t.Fatalf("Base.Close returned before a bufferevent stopped")
		}
	}
	// A bufferevent that stopped on its own closes Done as its goroutine's
	// last act, so the goroutine may be a moment from gone.
	got = count()
	for i := 0; i < 10000 && len(got) != 0; i++ {
		runtime.Gosched()
		got = count()
	}
	if len(got) != 0 {
		t.Errorf("goroutines left after Base.Close: %v", got)
	}
}

// Deferred callbacks run on the Base's dispatcher highest priority first.
func TestDeferredPriorities(t *testing.T) {
	base, err := actor.NewBaseConfig(actor.BaseConfig{Priorities: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	mk := func(pri int) *actor.Bufferevent {
		b, err := actor.New(base, nil, actor.DeferCallbacks)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SetPriority(pri); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := mk(1).Priority(); got != 1 {
		t.Errorf("Priority() = %d, want 1", got)
	}
	blocker, low, high := mk(0), mk(2), mk(0)
	release := make(chan struct{})
	running := make(chan struct{})
	order := make(chan string, 2)
	blocker.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) {
		close(running)
		<-release
	}})
	low.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { order <- "low" }})
	high.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { order <- "high" }})
	blocker.TriggerEvent(actor.EOF, 0)
	testkit.Recv(t, running, "blocker's turn")
	// While the dispatcher is busy with blocker, queue low, then high.
	low.TriggerEvent(actor.EOF, 0)
	waitQueued(t, low)
	high.TriggerEvent(actor.EOF, 0)
	waitQueued(t, high)
	close(release)
	if first, second := testkit.Recv(t, order, "first"), testkit.Recv(t, order, "second"); first != "high" || second != "low" {
		t.Errorf("deferred callbacks ran %s, %s; want high, low", first, second)
	}
}

// waitQueued returns once b's actor has handled everything posted so far
// and finished that step, so its deferred callback is queued on the
// dispatcher. One Do is not enough: it may run in the same batch of
// messages as the trigger, before the step that queues the callback; a
// second Do, posted after the first returned, is handled in a later batch.
func waitQueued(t *testing.T, b *actor.Bufferevent) {
	t.Helper()
	for range 2 {
		if err := b.Do(func(*actor.Session) {}); err != nil {
			t.Fatal(err)
		}
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
	select {
	case ev := <-got:
		t.Errorf("a second event %v; deferred events should coalesce", ev)
	default:
	}
}

func TestEventString(t *testing.T) {
	for _, tc := range []struct {
		ev   actor.Event
		want string
	}{
		{0, "0"},
		{actor.Reading | actor.EOF, "Reading|EOF"},
		{actor.Timeout | actor.Writing, "Writing|Timeout"},
		{actor.Connected, "Connected"},
		{actor.Error | 0x100, "Error|0x100"},
	} {
		if got := tc.ev.String(); got != tc.want {
			t.Errorf("Event(%#x).String() = %q, want %q", uint16(tc.ev), got, tc.want)
		}
	}
	if got := (actor.Read | actor.Write).String(); got != "Read|Write" {
		t.Errorf("Dir String = %q", got)
	}
}
