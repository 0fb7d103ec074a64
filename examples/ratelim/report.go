package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// stats are the rates of one run in B/s, as test-ratelim computes them.
type stats struct {
	rates              []float64 // per connection: received / window
	total, avg, stddev float64   // sum, mean, population standard deviation
}

func computeStats(res *result) stats {
	secs := res.window.Seconds()
	s := stats{rates: make([]float64, len(res.received))}
	for i, n := range res.received {
		s.rates[i] = float64(n) / secs
		s.total += s.rates[i]
	}
	s.avg = s.total / float64(len(s.rates))
	for _, r := range s.rates {
		s.stddev += (r - s.avg) * (r - s.avg)
	}
	s.stddev = math.Sqrt(s.stddev / float64(len(s.rates)))
	return s
}

// report prints the rates and the enabled checks to stdout, and each
// failed check to stderr, and reports whether every check passed.
func report(stdout, stderr io.Writer, o *options, res *result) bool {
	s := computeStats(res)
	wantTotal, wantAvg := o.expected()
	if res.libevent {
		fmt.Fprintf(stdout, "window: libevent's, from start-up to %v, counted as %v", res.window-5*time.Millisecond, res.window)
	} else {
		fmt.Fprintf(stdout, "window: %v (%d ticks of %v) from mid-tick, after set-up; snapshots %v and %v late",
			res.window, res.ticks, res.tick, res.late[0].Round(time.Microsecond), res.late[1].Round(time.Microsecond))
	}
	if res.skipped > 0 {
		fmt.Fprintf(stdout, "; %d disturbed edges passed over", res.skipped)
	}
	fmt.Fprintf(stdout, "; worst stall %v\n", res.stalled.Round(time.Microsecond))
	if why := res.disturbance(); why != "" {
		fmt.Fprintf(stderr, "ratelim: warning: disturbed window: %s; the figures may be off\n", why)
	}
	for i, r := range s.rates {
		fmt.Fprintf(stdout, "%4d: %10.1f B/s\n", i+1, r)
	}
	line := func(name string, got, want float64) {
		fmt.Fprintf(stdout, "%8s: %10.1f B/s", name, got)
		if want > 0 {
			fmt.Fprintf(stdout, " (expected %.1f, off by %+.1f)", want, got-want)
		}
		fmt.Fprintln(stdout)
	}
	line("total", s.total, wantTotal)
	line("average", s.avg, wantAvg)
	line("stddev", s.stddev, 0)
	if res.grouped {
		fmt.Fprintf(stdout, "group totals in the window: read %d B, written %d B\n", res.groupRead, res.groupWritten)
	}

	ok := true
	// check compares v, an error ("off by") or the deviation, with tol.
	check := func(name string, v, tol float64, enabled bool) {
		if !enabled {
			return
		}
		pass := v <= tol
		verdict := "ok"
		if !pass {
			verdict = "FAIL"
			ok = false
			fmt.Fprintf(stderr, "ratelim: %s out of bounds: %.1f B/s, tolerance %.1f\n", name, v, tol)
		}
		what := "off by "
		if name == "stddev" {
			what = ""
		}
		fmt.Fprintf(stdout, "check %-8s %s%.1f B/s, tolerance %.1f: %s\n", name+":", what, v, tol, verdict)
	}
	check("total", math.Abs(s.total-wantTotal), o.groupTol, o.groupTol > 0 && wantTotal > 0)
	check("average", math.Abs(s.avg-wantAvg), o.connTol, o.connTol > 0 && wantAvg > 0)
	check("stddev", s.stddev, o.stddevTol, o.stddevTol > 0)
	return ok
}

// disturbance says why the window is not to be trusted, or returns "".
func (res *result) disturbance() string {
	var why []string
	switch {
	case res.unsettled && res.libevent:
		why = append(why, "a refill came before every server end had started, or the window's end was taken late, or with bytes on their way or a turn not taken")
	case res.unsettled:
		why = append(why, fmt.Sprintf("no settled edge after %d tries", maxSkips+1))
	}
	if res.lateLeases > 0 {
		why = append(why, fmt.Sprintf("%d leases from Redis came a quarter of a tick late or failed", res.lateLeases))
	}
	if res.stalled >= res.tick/2 {
		why = append(why, fmt.Sprintf("the process stalled for %v, half a tick or more", res.stalled.Round(time.Millisecond)))
	}
	return strings.Join(why, " and ")
}
