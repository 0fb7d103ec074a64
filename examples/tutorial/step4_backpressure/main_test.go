package main

import (
	"io"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// handOver is the most one transfer across the pair carries: what the
// producer's output may hold, its write high watermark plus one Send.
const handOver = writeHigh + piece

// holdBound is the most the consumer's input may hold: its read high
// watermark plus one read (docs/design.md, "Data guarantees"), and a read
// from a pair takes at most one hand-over.
func holdBound(readHigh int) int { return readHigh + handOver }

// bound is the most that may be in between producer and consumer: the
// consumer's input, the producer's output and one hand-over on its way
// from one to the other. It does not depend on total.
func bound(readHigh int) int { return holdBound(readHigh) + 2*handOver }

// checkLooks checks what a consumer with the given read high watermark saw.
func checkLooks(t *testing.T, looks []look, readHigh int) (most int) {
	t.Helper()
	if len(looks) == 0 || looks[0].took != 0 {
		t.Fatalf("looks = %+v, want a first look before any read", looks)
	}
	if first := looks[0]; first.holds != readHigh || first.sent >= total {
		t.Errorf("before any read: %+v, want the consumer holding %d and the producer waiting", first, readHigh)
	}
	for _, l := range looks {
		if l.holds > holdBound(readHigh) {
			t.Errorf("%+v: consumer holds more than its high watermark %d and one read", l, readHigh)
		}
		if l.sent-l.took > bound(readHigh) {
			t.Errorf("%+v: %d bytes in between, want at most %d", l, l.sent-l.took, bound(readHigh))
		}
		most = max(most, l.sent-l.took)
	}
	return most
}

func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := testkit.Output(t, func(w io.Writer) error { return run(w, synctest.Wait) })
		if lines := strings.Count(out, "\n"); lines < total/readHigh {
			t.Errorf("run() printed %d looks, want at least %d:\n%s", lines, total/readHigh, out)
		}
		looks, err := watch(synctest.Wait, readHigh)
		if err != nil {
			t.Fatalf("watch() = %v", err)
		}
		checkLooks(t, looks, readHigh)
	})
}

// TestExercise is the answer to step 4's exercise: with a read high
// watermark of 16 KiB the consumer holds 16 KiB before it reads, and about
// 12 KiB more are in between than with 4 KiB; never more than the bound.
func TestExercise(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		small, err := watch(synctest.Wait, readHigh)
		if err != nil {
			t.Fatalf("watch(4 KiB) = %v", err)
		}
		large, err := watch(synctest.Wait, 16*piece)
		if err != nil {
			t.Fatalf("watch(16 KiB) = %v", err)
		}
		a, b := checkLooks(t, small, readHigh), checkLooks(t, large, 16*piece)
		if b-a < 8*piece {
			t.Errorf("most in between: %d at 4 KiB, %d at 16 KiB; want 12 KiB more", a, b)
		}
	})
}
