package clock_test

import (
	"testing"
	"time"

	"github.com/bevgo/bev/clock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The real clock's timer fires after its delay, and again after a Reset.
func TestRealTimer(t *testing.T) {
	c := clock.Real()
	fired := make(chan time.Time, 2)
	start := c.Now()
	tm := c.AfterFunc(10*time.Millisecond, func() { fired <- time.Now() })
	select {
	case at := <-fired:
		if d := at.Sub(start); d < 10*time.Millisecond {
			t.Fatalf("fired after %v, want at least 10ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire within 5s")
	}
	tm.Reset(time.Millisecond)
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire again after Reset within 5s")
	}
	tm.Stop()
}

func TestOrReal(t *testing.T) {
	if clock.OrReal(nil) == nil {
		t.Fatal("OrReal(nil) = nil, want the real clock")
	}
	c := clock.Real()
	if got := clock.OrReal(c); got != c {
		t.Fatalf("OrReal(c) = %v, want c", got)
	}
}
