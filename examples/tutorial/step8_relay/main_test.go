package main

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/synctest"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// want is what run prints at rate bytes a second: the burst at once, then
// rate bytes at every tick of the bucket, and EOF with the last byte.
func want(rate int) string {
	var b bytes.Buffer
	for got, s := rate, 0; got <= total; got, s = got+rate, s+1 {
		if got < total {
			fmt.Fprintf(&b, "%ds: the sink has %d bytes\n", s, got)
		} else {
			fmt.Fprintf(&b, "%ds: the sink has %d bytes, then EOF\n", s, got)
		}
	}
	return b.String()
}

// TestRun runs the relay on synctest's fake clock: 64 KiB at 16 KiB a
// second take 3 s of the bubble's time and no real time.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := testkit.Output(t, func(w io.Writer) error { return run(w, 16<<10) })
		if out != want(16<<10) {
			t.Errorf("run() printed\n%s\nwant\n%s", out, want(16<<10))
		}
	})
}

// TestExercise is the answer to step 8's exercise: at half the rate the
// same 64 KiB take 7 s, 8 KiB at a time.
func TestExercise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		if err := run(&out, 8<<10); err != nil {
			t.Fatalf("run() = %v", err)
		}
		if out.String() != want(8<<10) {
			t.Errorf("run() printed\n%s\nwant\n%s", out.String(), want(8<<10))
		}
	})
}
