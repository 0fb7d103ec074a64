package testkit_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bevgo/bev/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records what a Run reports instead of failing the real test. Its
// Fatalf, like Errorf, only records: it does not end the goroutine.
type fakeT struct {
	testing.TB // the real test, for what fakeT does not record
	mu         sync.Mutex
	errors     []string
	fatals     []string
	logs       []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

func (f *fakeT) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errors)+len(f.fatals) > 0
}

// TestRunFatalf: Fatalf reports, ends the run (what follows it does not
// run, its deferred calls do) and Recover swallows its panic.
func TestRunFatalf(t *testing.T) {
	f := &fakeT{TB: t}
	r := &testkit.Run{T: f}
	var after, deferred bool
	r.Watch(testkit.WaitTime, func() {
		defer r.Recover()
		defer func() { deferred = true }()
		r.Fatalf("bad %d", 1)
		after = true
	}, "prog", nil)
	if after || !deferred {
		t.Errorf("after Fatalf: the rest ran %v, the deferred call ran %v; want false, true", after, deferred)
	}
	if len(f.errors) != 1 || f.errors[0] != "bad 1" {
		t.Errorf("errors %q, want [\"bad 1\"]", f.errors)
	}
	if len(f.logs) != 1 || f.logs[0] != "program: prog" {
		t.Errorf("logs %q, want [\"program: prog\"]", f.logs)
	}
}

// TestRunPanic: Recover reports a panic other than Fatalf's with its
// stack.
func TestRunPanic(t *testing.T) {
	f := &fakeT{TB: t}
	r := &testkit.Run{T: f}
	r.Watch(testkit.WaitTime, func() {
		defer r.Recover()
		panic("boom")
	}, "prog", nil)
	if len(f.errors) != 1 || !strings.HasPrefix(f.errors[0], "panic: boom\n") || !strings.Contains(f.errors[0], "TestRunPanic") {
		t.Errorf("errors %q, want one saying panic: boom with the stack", f.errors)
	}
}

// TestRunPasses: a run that reports nothing leaves the test passing and
// logs nothing.
func TestRunPasses(t *testing.T) {
	f := &fakeT{TB: t}
	r := &testkit.Run{T: f}
	if got := r.Doing(); got != "setup" {
		t.Errorf("Doing() before SetDoing = %q, want \"setup\"", got)
	}
	r.Watch(testkit.WaitTime, func() {
		defer r.Recover()
		r.SetDoing("step %d", 2)
	}, "prog", nil)
	if f.Failed() || len(f.logs) != 0 {
		t.Errorf("errors %q, fatals %q, logs %q; want none", f.errors, f.fatals, f.logs)
	}
	if got := r.Doing(); got != "step 2" {
		t.Errorf("Doing() = %q, want \"step 2\"", got)
	}
}

// TestRunHung: when the run hangs, Watch fails the test saying what the
// run was doing, with detail's account, and the program; the run is
// quiet from then on.
func TestRunHung(t *testing.T) {
	f := &fakeT{TB: t}
	r := &testkit.Run{T: f}
	release, done := make(chan struct{}), make(chan struct{})
	r.SetDoing("waiting")
	r.Watch(10*time.Millisecond, func() {
		defer close(done)
		defer r.Recover()
		<-release
		r.Errorf("late report")
	}, "prog", func(doing string) string { return doing + ", in detail" })
	if len(f.fatals) != 1 || !strings.HasPrefix(f.fatals[0], "hung for 10ms in waiting, in detail\nprogram: prog\ngoroutines:\n") {
		t.Errorf("fatals %q, want one saying the run hung waiting, in detail, and the program", f.fatals)
	}
	close(release)
	<-done
	if len(f.errors) != 0 {
		t.Errorf("errors %q after the watchdog gave up, want none", f.errors)
	}
}
