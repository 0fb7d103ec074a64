package actor_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of bufferevent.go: the Bufferevent's methods (a zero value, bad
// arguments, Do and Read, a partial read, Trigger).

// Every method of a Bufferevent that was not made by a constructor, a
// zero value or a nil pointer, fails with ErrInvalid or gives its zero
// result, and none panics or blocks (issue 13, item 13).
func TestZeroBufferevent(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    *actor.Bufferevent
	}{{"zero", new(actor.Bufferevent)}, {"nil", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			var buf actor.Buffer
			buf.Write([]byte("x"))
			errs := map[string]error{
				"Write":              b.Write([]byte("x")),
				"Write(nil)":         b.Write(nil),
				"WriteBuffer":        b.WriteBuffer(&buf),
				"ReadBuffer":         b.ReadBuffer(new(actor.Buffer)),
				"Do":                 b.Do(func(*actor.Session) { t.Error("Do ran fn on a zero bufferevent") }),
				"Enable":             b.Enable(actor.Read),
				"Disable":            b.Disable(actor.Read),
				"SetWatermark":       b.SetWatermark(actor.Read, 0, 10),
				"SetTimeouts":        b.SetTimeouts(time.Second, time.Second),
				"SetMaxRead":         b.SetMaxRead(10),
				"SetMaxWrite":        b.SetMaxWrite(10),
				"SetPriority":        b.SetPriority(0),
				"Flush":              b.Flush(actor.Write, actor.Finished),
				"Trigger":            b.Trigger(actor.Read, 0),
				"TriggerEvent":       b.TriggerEvent(actor.EOF, 0),
				"Connect":            b.Connect(ctx, func(context.Context) (actor.Transport, error) { return nil, errors.New("dial") }),
				"SetTransport":       b.SetTransport(nil),
				"ReplaceTransport":   b.ReplaceTransport(nil),
				"Close":              b.Close(),
				"Drain":              b.Drain(ctx),
				"Err":                b.Err(),
				"Send":               b.Send(ctx, []byte("x")),
				"SetRateLimit":       b.SetRateLimit(nil),
				"DecrementReadLimit": b.DecrementReadLimit(1),
			}
			_, err := b.TryRead(make([]byte, 4))
			errs["TryRead"] = err
			_, _, err = b.Watermark(actor.Read)
			errs["Watermark"] = err
			for name, err := range errs {
				if !errors.Is(err, actor.ErrInvalid) {
					t.Errorf("%s on a %s bufferevent = %v, want ErrInvalid", name, tc.name, err)
				}
			}
			if buf.Len() != 1 {
				t.Errorf("WriteBuffer on a %s bufferevent took the buffer", tc.name)
			}
			b.Free()
			b.SetCallbacks(actor.Callbacks{})
			b.LeaveGroup()
			if b.Base() != nil || b.Options() != 0 || b.Transport() != nil || b.Conn() != nil ||
				b.Underlying() != nil || b.Partner() != nil || b.Enabled() != 0 ||
				b.MaxRead() != 0 || b.MaxWrite() != 0 || b.Priority() != 0 ||
				b.InputLen() != 0 || b.OutputLen() != 0 || b.MaxToRead() != 0 || b.MaxToWrite() != 0 ||
				b.Group() != nil || b.RateLimit() != nil || b.Callbacks().Read != nil {
				t.Errorf("a getter of a %s bufferevent gave a non-zero result", tc.name)
			}
			if r, w := b.Timeouts(); r != 0 || w != 0 {
				t.Errorf("Timeouts() = %v, %v, want 0, 0", r, w)
			}
			for name, c := range map[string]<-chan struct{}{"Done": b.Done(), "Failed": b.Failed()} {
				select {
				case <-c:
				default:
					t.Errorf("%s() of a %s bufferevent is not closed", name, tc.name)
				}
			}
			if _, ok := <-b.In(); ok {
				t.Errorf("In() of a %s bufferevent delivered a chunk", tc.name)
			}
			if _, ok := <-b.Events(); ok {
				t.Errorf("Events() of a %s bufferevent delivered an event", tc.name)
			}
		})
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

// Case 36, bufferevent_read_failed: reading 8 of 9 bytes leaves 1.
func TestPartialRead(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	done := make(chan [2]int, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		if s.Input().Len() < 9 {
			return
		}
		p := make([]byte, 8)
		n := s.Read(p)
		done <- [2]int{n, s.Input().Len()}
	}})
	b.Enable(actor.Read)
	a.Write([]byte("test data"))
	if got := testkit.Recv(t, done, "read"); got != [2]int{8, 1} {
		t.Errorf("Read(8 of 9) = %d leaving %d, want 8 leaving 1", got[0], got[1])
	}
}

// Cases 26–29, bufferevent_trigger(_defer)(_postpone), over a pair.
func TestTrigger(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts actor.Option
		topt actor.TriggerOption
	}{
		{"plain", 0, 0},
		{"defer", actor.DeferCallbacks, 0},
		{"postpone", 0, actor.TriggerDefer},
		{"defer_postpone", actor.DeferCallbacks, actor.TriggerDefer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testbev.NewPair(t, tc.opts)
			deferred := tc.opts&actor.DeferCallbacks != 0 || tc.topt&actor.TriggerDefer != 0
			var reads atomic.Int32
			gotEvent := make(chan actor.Event, 1)
			triggered := func(s *actor.Session) {
				reads.Add(1)
				if err := s.TriggerEvent(^actor.Event(0), tc.topt); err != nil {
					t.Errorf("TriggerEvent() = %v", err)
				}
			}
			first := func(s *actor.Session) {
				reads.Add(1)
				s.Bufferevent().SetCallbacks(actor.Callbacks{
					Read:  triggered,
					Event: func(_ *actor.Session, ev actor.Event, _ error) { gotEvent <- ev },
				})
				s.SetWatermark(actor.Read, s.Input().Len()+1, 0)
				s.Trigger(actor.Read, tc.topt)
				if n := reads.Load(); n != 1 {
					t.Errorf("Trigger below the low watermark ran the read callback")
				}
				s.Trigger(actor.Read, tc.topt|actor.TriggerIgnoreWatermarks)
				if n, want := reads.Load(), map[bool]int32{false: 2, true: 1}[deferred]; n != want {
					t.Errorf("after Trigger(IgnoreWatermarks) reads = %d, want %d", n, want)
				}
			}
			b.SetCallbacks(actor.Callbacks{Read: first})
			b.Enable(actor.Read)
			a.Write([]byte("This is the test string\x00"))
			if ev := testkit.Recv(t, gotEvent, "triggered event"); ev != ^actor.Event(0) {
				t.Errorf("TriggerEvent(^0) delivered %v", ev)
			}
			if n := reads.Load(); n != 2 {
				t.Errorf("read callbacks = %d, want 2", n)
			}
		})
	}
}
