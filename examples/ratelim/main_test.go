package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runRatelim runs the program with args and returns its exit status and
// what it printed, logging the summary.
func runRatelim(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	for line := range strings.Lines(out.String()) {
		if !isRateLine(line) {
			t.Log(strings.TrimRight(line, "\n"))
		}
	}
	return code, out.String(), errb.String()
}

// isRateLine reports whether line is one connection's rate, which the log
// leaves out.
func isRateLine(line string) bool {
	n, _, found := strings.Cut(strings.TrimSpace(line), ":")
	return found && strings.Trim(n, "0123456789") == ""
}

// The scenarios libevent's CI runs (test-ratelim.sh; section 3.3 of the
// reference), each over a 2 s window instead of 5 s, checked against the
// project's targets rather than libevent's looser tolerances: the total
// within 1 % (300 B/s) of 30000 B/s, the average within 2 % (20 B/s) of
// 1000 B/s, and a standard deviation of at most 20 B/s. The window starts
// and ends mid-tick, after set-up, so it holds exactly 20 refills and the
// expected figures are exact: on this 2-core machine, race detector
// included, an undisturbed run comes out 0 B/s off with a deviation of 0.
//
// The machine is shared, and at times it starves the process for
// hundreds of milliseconds, once 1.7 s (a plain Go program sleeping 5 ms
// at a time saw that too). No tolerance is safe against that, so the
// program reports such a window as disturbed, and a scenario that fails
// in a disturbed window is run again, up to three times; if every run
// was disturbed the test is skipped, saying so. A failure in an
// undisturbed window fails at once. The 5 s runs and their figures are
// in docs/benchmarks.md.
const (
	groupTol  = "300"
	connTol   = "20"
	stddevTol = "20"
	seconds   = "2"
	attempts  = 3
)

func TestGroupLim(t *testing.T) {
	checkScenario(t, "-g", "30000", "-n", "30", "-t", "100",
		"-check-grouplimit", groupTol, "-check-stddev", stddevTol)
}

func TestConLim(t *testing.T) {
	checkScenario(t, "-c", "1000", "-n", "30", "-t", "100",
		"-check-connlimit", connTol, "-check-stddev", stddevTol)
}

func TestGroupConLim(t *testing.T) {
	checkScenario(t, "-c", "1000", "-g", "30000", "-n", "30", "-t", "100",
		"-check-grouplimit", groupTol, "-check-connlimit", connTol, "-check-stddev", stddevTol)
}

// In the drain scenario libevent's unit bug skips the group check; here
// the intended 30000 B/s is checked.
func TestGroupConLimDrain(t *testing.T) {
	out := checkScenario(t, "-c", "1000", "-g", "35000", "-n", "30", "-t", "100", "-G", "500",
		"-check-grouplimit", groupTol, "-check-connlimit", connTol, "-check-stddev", stddevTol)
	if !strings.Contains(out, "expected 30000.0") || !strings.Contains(out, "check total:") {
		t.Errorf("the drain scenario did not check the total against 30000 B/s:\n%s", out)
	}
}

// checkScenario runs one scenario over a short window and fails unless
// every check passed.
func checkScenario(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"-d", seconds}, args...)
	_, out, _ := runUndisturbed(t, 0, args...)
	return out
}

// runUndisturbed runs the program until it exits with want or exits
// otherwise in an undisturbed window, which fails the test; after
// attempts disturbed runs that did not exit with want it skips the test.
func runUndisturbed(t *testing.T, want int, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for range attempts {
		code, stdout, stderr = runRatelim(t, args...)
		if code == want {
			return code, stdout, stderr
		}
		if !strings.Contains(stderr, "disturbed window") {
			t.Fatalf("ratelim %s exited %d, want %d\nstderr: %s", strings.Join(args, " "), code, want, stderr)
		}
		t.Logf("exit status %d in a disturbed window; running again. stderr: %s", code, stderr)
	}
	t.Skipf("the machine starved every one of %d runs; last stderr: %s", attempts, stderr)
	return code, stdout, stderr
}

// With -libevent-window the program counts as test-ratelim does, from
// start-up until 5 ms before -d: a bucket starts at its rate and gains it
// at every boundary, so in 0.995 s of 100 ms ticks a connection limited
// to 100 B per tick moves 1000 or 1100 B, depending on where the
// boundaries fall. The average is checked to within that one refill.
func TestLibeventWindow(t *testing.T) {
	_, out, _ := runUndisturbed(t, 0, "-libevent-window", "-n", "3", "-d", "1", "-t", "100", "-c", "1000",
		"-check-connlimit", "100")
	if !strings.Contains(out, "window: libevent's") {
		t.Errorf("stdout does not say the window is libevent's:\n%s", out)
	}
}

// A check that fails makes the program exit 1. Here the group's min share
// is its whole budget per tick, so each tick one connection in turn moves
// everything: in a 1 s window 10 of 30 connections move 300 B/s and 20
// move nothing, a deviation of 141 B/s, far over 50.
func TestFailedCheck(t *testing.T) {
	_, out, errs := runUndisturbed(t, 1, "-n", "30", "-d", "1", "-t", "100", "-g", "3000",
		"-min-share", "300", "-check-grouplimit", "300", "-check-stddev", "50")
	if !strings.Contains(errs, "stddev out of bounds") {
		t.Errorf("stderr = %q, want it to say the deviation is out of bounds", errs)
	}
	if !strings.Contains(out, "check total:") || !strings.Contains(out, "check stddev:") {
		t.Errorf("stdout does not show both checks:\n%s", out)
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no connections", []string{"-n", "0"}},
		{"zero duration", []string{"-d", "0"}},
		{"negative limit", []string{"-c", "-1"}},
		{"tick under 10 ms", []string{"-t", "9"}},
		{"drain below -100000", []string{"-G", "-100001"}},
		{"over an int", []string{"-g", "2147483648"}},
		{"min share below -1", []string{"-min-share", "-2"}},
		{"not a number", []string{"-c", "lots"}},
		{"negative tolerance", []string{"-check-stddev", "-1"}},
		{"NaN tolerance", []string{"-check-grouplimit", "NaN"}},
		{"under a byte per tick", []string{"-c", "5", "-t", "100"}},
		{"unknown flag", []string{"-x"}},
		{"stray argument", []string{"-n", "2", "extra"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != 2 {
				t.Errorf("run(%q) = %d, want 2", tc.args, code)
			}
			if !strings.Contains(errb.String(), "usage: ratelim") {
				t.Errorf("run(%q) printed no usage; stderr: %q", tc.args, errb.String())
			}
			if out.Len() != 0 {
				t.Errorf("run(%q) printed %q on stdout, want nothing", tc.args, out.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 {
		t.Errorf("run(-h) = %d, want 0", code)
	}
	if !strings.Contains(errb.String(), "-check-grouplimit") {
		t.Errorf("run(-h) did not list the flags; stderr: %q", errb.String())
	}
}

func TestExpected(t *testing.T) {
	tests := []struct {
		name             string
		args             []string
		wantTotal        float64 // <= 0: no check
		wantAvg          float64
		connTick, grTick int64
	}{
		{"no limits", nil, -1, -1, 0, 0},
		{"group_lim", []string{"-g", "30000", "-n", "30", "-t", "100"}, 30000, 1000, 0, 3000},
		{"con_lim", []string{"-c", "1000", "-n", "30", "-t", "100"}, -1, 1000, 100, 0},
		{"group_con_lim", []string{"-c", "1000", "-g", "30000", "-n", "30", "-t", "100"}, 30000, 1000, 100, 3000},
		// libevent expects 3500 - 500/0.1 = -1500 per tick here and
		// skips the check.
		{"group_con_lim_drain", []string{"-c", "1000", "-g", "35000", "-n", "30", "-t", "100", "-G", "500"}, 30000, 1000, 100, 3500},
		{"drain without -c", []string{"-g", "35000", "-n", "30", "-t", "100", "-G", "500"}, 30000, 1000, 0, 3500},
		{"per-tick truncation", []string{"-c", "1005", "-g", "30000", "-n", "7", "-t", "100"}, 30000, 1000, 100, 3000},
		{"share under the cap", []string{"-c", "5000", "-g", "30000", "-n", "7", "-t", "300"}, 30000, 1285.0 / 0.3, 1500, 9000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			o, err := parseOptions(tc.args, &errb)
			if err != nil {
				t.Fatalf("parseOptions(%q) = %v; stderr %q", tc.args, err, errb.String())
			}
			if c, g := o.perTick(o.connLimit), o.perTick(o.groupLimit); c != tc.connTick || g != tc.grTick {
				t.Errorf("per tick = %d, %d, want %d, %d", c, g, tc.connTick, tc.grTick)
			}
			total, avg := o.expected()
			if !same(total, tc.wantTotal) || !same(avg, tc.wantAvg) {
				t.Errorf("expected() = %v, %v, want %v, %v", total, avg, tc.wantTotal, tc.wantAvg)
			}
		})
	}
}

// same reports whether a and b are equal to within rounding, or both
// mean "no check".
func same(a, b float64) bool {
	if a <= 0 || b <= 0 {
		return a <= 0 && b <= 0
	}
	return math.Abs(a-b) < 1e-6*b
}
