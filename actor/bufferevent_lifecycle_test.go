package actor_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
)

// Tests of bufferevent_lifecycle.go: Close, and the methods of a closed
// bufferevent.

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
