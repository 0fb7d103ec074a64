package testkit

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

// Run is the bookkeeping of one run of a test program on a goroutine of
// its own under Within's watchdog, as the model-based fuzz targets do it:
// the test, what the run is doing (for the watchdog's message) and
// whether the watchdog has given up on it. A fuzz target's run type
// embeds it, sets T in its composite literal, defers Recover at the top
// of its run method and calls Watch from the fuzz function. Run must not
// be copied after first use.
type Run struct {
	// T is the test the run reports to.
	T testing.TB

	doing atomic.Pointer[string]
	// quiet: the watchdog has given up on the run, which must not report
	// to a test that has ended.
	quiet atomic.Bool
}

// abort is what Fatalf panics with to end a run early; Recover swallows
// it.
type abort struct{}

// Errorf reports a failure with T.Errorf and lets the run go on. It is
// safe from any goroutine (the callbacks' included), and does nothing
// once the watchdog has given up on the run.
func (r *Run) Errorf(format string, args ...any) {
	if r.quiet.Load() {
		return
	}
	r.T.Helper()
	r.T.Errorf(format, args...)
}

// Fatalf reports a failure as Errorf does and ends the run by panicking
// with a value Recover swallows, so the run's deferred clean-ups still
// run. Only the run goroutine may call it, below a deferred Recover.
func (r *Run) Fatalf(format string, args ...any) {
	r.T.Helper()
	r.Errorf(format, args...)
	panic(abort{})
}

// SetDoing records what the run goroutine does next, for the watchdog's
// message, formatted as by fmt.Sprintf. It is safe from any goroutine.
func (r *Run) SetDoing(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.doing.Store(&s)
}

// Doing returns what SetDoing last recorded, or "setup" if it was never
// called: the run has not started its program.
func (r *Run) Doing() string {
	if p := r.doing.Load(); p != nil {
		return *p
	}
	return "setup"
}

// Recover is to be deferred at the top of the run goroutine's function
// (defer r.Recover()). It swallows Fatalf's panic, whose failure is
// already reported, and reports any other panic with Errorf and the
// panicking goroutine's stack, so that a panic fails only the run's test
// and the run's other deferred clean-ups still run.
func (r *Run) Recover() {
	if v := recover(); v != nil {
		if _, ok := v.(abort); !ok {
			r.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}
}

// Watch runs run, a run's function, with Within (T, limit), and then
// logs the program (prog, printed with %v) if the test failed. If run
// hangs, Watch makes the run quiet, so that it no longer reports to the
// failed test, and fails the test with Within's message, which says
// what the run was doing (Doing, or detail's answer for it when detail
// is not nil, for a finer account) and the program. Like Within it must
// be called from the goroutine running the test.
func (r *Run) Watch(limit time.Duration, run func(), prog any, detail func(doing string) string) {
	r.T.Helper()
	Within(r.T, limit, run, func() string {
		r.quiet.Store(true)
		doing := r.Doing()
		if detail != nil {
			doing = detail(doing)
		}
		return fmt.Sprintf("%s\nprogram: %v", doing, prog)
	})
	if r.T.Failed() {
		r.T.Logf("program: %v", prog)
	}
}
