package main

import (
	"io"
	"math"
	"testing"
)

// FuzzParseOptions feeds arbitrary values to test-ratelim's numeric flags:
// parseOptions never panics, and what it accepts can be run: each limit
// it takes is at least a byte per tick and makes a valid bucket config,
// the tick and duration are positive, and the expected rates are finite.
func FuzzParseOptions(f *testing.F) {
	f.Add("30", "5", "100000", "0", "0", "1000", "-1", "0")
	f.Add("30", "5", "0", "1000000", "-100000", "10", "64", "1000.5")
	f.Add("1", "1", "2147483647", "2147483647", "2147483647", "2147483647", "2147483647", "1e308")
	f.Add("0", "-1", "1", "9", "-100001", "9", "-2", "NaN")
	f.Add("2147483648", "99999999999999999999", "-1", "0x10", "1e3", "", "", "+Inf")
	f.Fuzz(func(t *testing.T, n, d, c, g, drain, tick, minShare, tol string) {
		args := []string{"-n", n, "-d", d, "-c", c, "-g", g, "-G", drain, "-t", tick, "-min-share", minShare, "-check-connlimit", tol}
		o, err := parseOptions(args, io.Discard)
		if err != nil {
			return
		}
		if o.tick() <= 0 || o.duration() <= 0 || o.conns < 1 {
			t.Fatalf("parseOptions(%q): tick %v, duration %v, %d connections", args, o.tick(), o.duration(), o.conns)
		}
		for _, limit := range []int64{o.connLimit, o.groupLimit} {
			if limit == 0 {
				continue
			}
			pt := o.perTick(limit)
			if pt < 1 {
				t.Fatalf("parseOptions(%q) took a limit of %d B/s, %d per tick", args, limit, pt)
			}
			if _, err := o.bucketConfig(pt); err != nil {
				t.Fatalf("parseOptions(%q): bucketConfig(%d): %v", args, pt, err)
			}
		}
		total, avg := o.expected()
		if math.IsNaN(total) || math.IsInf(total, 0) || math.IsNaN(avg) || math.IsInf(avg, 0) {
			t.Fatalf("parseOptions(%q): expected %v, %v", args, total, avg)
		}
	})
}
