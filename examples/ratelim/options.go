package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/bevgo/bev/limiter"
)

// options are the command-line settings, test-ratelim's cfg_* variables.
type options struct {
	conns      int64   // -n
	seconds    int64   // -d
	connLimit  int64   // -c, bytes per second; 0 for none
	groupLimit int64   // -g, bytes per second; 0 for none
	drain      int64   // -G, bytes per tick
	tickMs     int64   // -t
	minShare   int64   // -min-share; -1 keeps the group's default
	connTol    float64 // -check-connlimit, B/s; 0 skips the check
	groupTol   float64 // -check-grouplimit
	stddevTol  float64 // -check-stddev
	// libeventWindow (-libevent-window) counts from start-up, as
	// test-ratelim does, instead of over a settled window.
	libeventWindow bool
	// redisURL (-group-redis) keeps the group's budget in that Redis,
	// under groupName (-group-name); empty keeps it in the process.
	redisURL, groupName string
}

// intFlag is an integer flag with libevent's bounds: at least min and at
// most math.MaxInt32, since test-ratelim keeps every value in an int.
type intFlag struct {
	p    *int64
	name string
	min  int64
}

// parseOptions parses args as test-ratelim's options. Bad flags and
// out-of-range values are reported on stderr with the usage, and give an
// error; -h gives flag.ErrHelp after printing the usage.
func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{conns: 30, seconds: 5, tickMs: 1000, minShare: -1}
	fs := flag.NewFlagSet("ratelim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ints := []intFlag{
		{&o.conns, "n", 1},
		{&o.seconds, "d", 1},
		{&o.connLimit, "c", 0},
		{&o.groupLimit, "g", 0},
		{&o.drain, "G", -100000},
		{&o.tickMs, "t", 10},
		{&o.minShare, "min-share", -1},
	}
	usage := map[string]string{
		"n":         "number of connections to open (at least 1)",
		"d":         "seconds to measure for (at least 1)",
		"c":         "rate limit of each connection in bytes per second (0: none)",
		"g":         "rate limit of the group of all connections in bytes per second (0: none)",
		"G":         "bytes to drain from the group's buckets every tick, with -g (negative adds)",
		"t":         "tick (refill period) in milliseconds (at least 10)",
		"min-share": "the group's min share in bytes, with -g (-1: the default, 64)",
	}
	for _, f := range ints {
		fs.Int64Var(f.p, f.name, *f.p, usage[f.name])
	}
	fs.Float64Var(&o.connTol, "check-connlimit", 0, "fail unless the average is within this many B/s of the expected (0: no check)")
	fs.Float64Var(&o.groupTol, "check-grouplimit", 0, "fail unless the total is within this many B/s of the expected (0: no check)")
	fs.Float64Var(&o.stddevTol, "check-stddev", 0, "fail if the standard deviation of the connections' rates is above this many B/s (0: no check)")
	fs.StringVar(&o.redisURL, "group-redis", "", "keep the group's budget in the Redis at this `URL` (redis:// or rediss://), as a fleet of processes would")
	fs.StringVar(&o.groupName, "group-name", "", "with -group-redis: the group's `name` in Redis (default: a new one per run)")
	fs.BoolVar(&o.libeventWindow, "libevent-window", false, "count from start-up until 5 ms before -d and divide by -d, as libevent's test-ratelim, instead of over whole ticks after set-up")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: ratelim [flags]\n\n"+
			"Pushes bytes through rate-limited echo connections over loopback TCP and\n"+
			"reports their throughput (libevent's test-ratelim).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bad := func(format string, a ...any) (*options, error) {
		err := fmt.Errorf(format, a...)
		fmt.Fprintf(stderr, "ratelim: %v\n", err)
		fs.Usage()
		return nil, err
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range ints {
		if *f.p < f.min || *f.p > math.MaxInt32 {
			return bad("-%s %d is out of range [%d, %d]", f.name, *f.p, f.min, math.MaxInt32)
		}
	}
	tols := []struct {
		name string
		v    float64
	}{{"check-connlimit", o.connTol}, {"check-grouplimit", o.groupTol}, {"check-stddev", o.stddevTol}}
	for _, tol := range tols {
		if !(tol.v >= 0) || math.IsInf(tol.v, 0) {
			return bad("-%s %v must be a finite number, at least 0", tol.name, tol.v)
		}
	}
	if o.redisURL != "" && o.groupLimit == 0 {
		return bad("-group-redis needs -g")
	}
	if o.connLimit > 0 && o.perTick(o.connLimit) < 1 {
		return bad("-c %d is under one byte per %d ms tick", o.connLimit, o.tickMs)
	}
	if o.groupLimit > 0 && o.perTick(o.groupLimit) < 1 {
		return bad("-g %d is under one byte per %d ms tick", o.groupLimit, o.tickMs)
	}
	return o, nil
}

// duration returns -d.
func (o *options) duration() time.Duration { return time.Duration(o.seconds) * time.Second }

// tick returns the refill period.
func (o *options) tick() time.Duration { return time.Duration(o.tickMs) * time.Millisecond }

// secondsPerTick is libevent's seconds_per_tick (and ratio).
func (o *options) secondsPerTick() float64 { return float64(o.tickMs) / 1000 }

// perTick converts bytes per second to whole bytes per tick, truncating
// as test-ratelim's `cfg_connlimit *= ratio` does.
func (o *options) perTick(perSecond int64) int64 {
	return int64(float64(perSecond) * o.secondsPerTick())
}

// bucketConfig returns test-ratelim's token-bucket config for a rate in
// bytes per tick: the rate in both directions, with bursts of four times
// the rate.
func (o *options) bucketConfig(perTick int64) (*limiter.Config, error) {
	return limiter.NewConfig(perTick, 4*perTick, perTick, 4*perTick, o.tick())
}

// expected returns the expected total and average rates in B/s; a value
// of 0 or less means there is nothing to check. See the package doc for
// where they differ from libevent's.
func (o *options) expected() (total, avg float64) {
	cpt, gpt := o.perTick(o.connLimit), o.perTick(o.groupLimit)
	total, avg = -1, -1
	if gpt > 0 {
		total = float64(gpt - o.drain)
		avg = float64((gpt - o.drain) / o.conns)
		if cpt > 0 && avg > float64(cpt) {
			avg = float64(cpt)
		}
	} else if cpt > 0 {
		avg = float64(cpt)
	}
	spt := o.secondsPerTick()
	return total / spt, avg / spt
}
