package main

import (
	"bytes"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the program in a synctest bubble, whose clock moves only
// when every goroutine in it waits: the timeout fires 100 ms after the
// last tick at 180 ms, exactly, and the test takes no real time.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		testkit.CheckOutput(t, func(w io.Writer) error { return run(w, 60*time.Millisecond) }, "Reading|Timeout after 280ms\n")
	})
}

// TestExercise is the answer to step 5's exercise: ticks 120 ms apart
// come too late, and the timeout fires at 100 ms, before the first; the
// ticks that follow find reading disabled and restart nothing.
func TestExercise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		if err := run(&out, 120*time.Millisecond); err != nil {
			t.Fatalf("run() = %v", err)
		}
		if want := "Reading|Timeout after 100ms\n"; out.String() != want {
			t.Errorf("run() printed %q, want %q", out.String(), want)
		}
	})
}
