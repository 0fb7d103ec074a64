package actor_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

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

// A zero Base refuses to own anything and does not panic on Close.
func TestZeroBase(t *testing.T) {
	var base actor.Base
	if err := base.Close(); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("zero Base.Close() = %v, want ErrInvalid", err)
	}
	if err := base.Register(io.NopCloser(nil)); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("zero Base.Register() = %v, want ErrInvalid", err)
	}
	base.Unregister(io.NopCloser(nil))
	if b, err := actor.New(&base, nil, 0); !errors.Is(err, actor.ErrInvalid) || b != nil {
		t.Errorf("New(zero Base) = %v, %v, want nil, ErrInvalid", b, err)
	}
	if base.Clock() == nil || base.Priorities() != 1 {
		t.Errorf("zero Base: Clock() = %v, Priorities() = %d, want the real clock and 1", base.Clock(), base.Priorities())
	}
}

// actor.ErrClosed is also net.ErrClosed, as pipeline.ErrClosed is, and so
// is what a closed bufferevent's methods return.
func TestErrClosedIsNetErrClosed(t *testing.T) {
	if !errors.Is(actor.ErrClosed, net.ErrClosed) {
		t.Errorf("errors.Is(ErrClosed, net.ErrClosed) = false")
	}
	a, _ := testbev.NewPair(t, 0)
	a.Close()
	if err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed and net.ErrClosed", err)
	}
}

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

// Each package's prefix appears once in an error string, however the
// error was wrapped, and errors.Is still finds every sentinel (item 13).
func TestErrorPrefixOnce(t *testing.T) {
	var buf actor.Buffer
	_, errLine := buf.ReadLine(actor.EOLStyle(99))
	cases := []struct {
		err  error
		want []error
	}{
		{buf.Drain(-1), []error{actor.ErrInvalid}},
		{errLine, []error{actor.ErrInvalid}},
		{buf.MoveFrom(nil), []error{actor.ErrInvalid}},
	}
	a, _ := testbev.NewPair(t, 0)
	cases = append(cases, struct {
		err  error
		want []error
	}{a.Do(func(*actor.Session) { panic(io.ErrUnexpectedEOF) }), []error{actor.ErrPanic, io.ErrUnexpectedEOF}})
	testkit.Recv(t, a.Done(), "a to stop")
	cases = append(cases, struct {
		err  error
		want []error
	}{a.Write([]byte("x")), []error{actor.ErrClosed, net.ErrClosed}})
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("nil error, want %v", c.want)
			continue
		}
		if n := strings.Count(c.err.Error(), "actor:"); n != 1 {
			t.Errorf("%q says %q %d times, want once", c.err, "actor:", n)
		}
		for _, w := range c.want {
			if !errors.Is(c.err, w) {
				t.Errorf("errors.Is(%q, %v) = false", c.err, w)
			}
		}
	}
}
