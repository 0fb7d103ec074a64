// Ratelim is libevent's test-ratelim on bev: it pushes bytes through many
// rate-limited echo connections over loopback TCP and reports whether the
// per-connection limits and the group limit held, and how fairly the group
// shared its budget.
//
// Run it with, for example,
//
//	go run ./examples/ratelim -n 30 -d 5 -t 100 -g 30000 -check-grouplimit 300 -check-stddev 20
//
// An echo server listens on 127.0.0.1 (a free port). Every connection it
// accepts carries the per-connection limit (-c) and joins the group (-g),
// as in libevent, so the server's reads and writes are what is limited.
// Its read callback moves input to output and stops reading above
// 1,024,000 buffered bytes; its write callback starts again below 512,000.
// n client sockets connect to it, keep at least 8192 bytes queued to send
// (a write callback behind a write low watermark, topping up in 1024-byte
// writes, started by a Trigger once connected) and count and discard what
// comes back. The clients' socket send buffers are kept at 16 KiB: left to
// the kernel they grow to megabytes, and filling them is a burst of CPU
// that has nothing to do with rate limiting.
//
// # The window
//
// Receipt is counted over a window of -d seconds, rounded up to whole
// ticks, that starts once every connection is up, a warm-up has passed
// and at least one more tick boundary: connection start-up and the
// buckets' first fill stay outside it. The window starts and ends in the
// middle of a tick. Buckets refill at tick boundaries (absolute multiples
// of the tick, as in libevent) and the bytes a refill lets through arrive
// within milliseconds, so in the middle of a tick nothing moves and the
// window sees exactly its number of refills. An edge at which bytes are
// still on their way, or whose snapshots came too late, moves on by a
// tick. A run in which the process stalled for half a tick or more, or
// that found no settled edge, prints a warning that its window was
// disturbed: on a starved machine no figure is trustworthy.
//
// With -libevent-window it counts as test-ratelim does instead: from
// start-up until 5 ms before -d, divided by -d. Start-up is when the
// limits start, once every connection is up (test-ratelim's connections
// come up in microseconds; here, under load, that took over a tick, and
// a refill then went to whoever started first). The clock starts half a
// tick past a tick boundary, so that the window holds -d's number of
// boundaries; the group is made then, and starts empty, as libevent's
// effectively does (its refill timer, started with the group, fires one
// time fewer than -d has ticks, and its start-up bucket makes up the
// difference); and every server end gets its limits and starts reading
// then, before the next boundary, so every member shares the first
// refill. The group's total then comes out exact and its shares equal.
// A connection's own bucket still starts at its rate, as in libevent, so
// with -c alone a connection moves one refill more than the duration's
// worth (+20 B/s on 1000 B/s over 5 s). A window whose start took past
// that boundary, or whose end is taken half a tick late or finds bytes
// on their way or a turn not yet taken, is disturbed: a stall at the
// edge moved a refill, or part of one, across it.
//
// With -group-redis URL the group's budget is kept in that Redis
// (package limiter/redisgroup), under -group-name or a name of its own
// per run, as a fleet of processes would share it; the rest is the same,
// except that a window in which a lease from Redis came a quarter of a
// tick late, or failed, is reported as disturbed too: the machine starved
// Redis or the store, and a refill may have been handed out outside it.
//
// It prints each connection's rate, the total, the average and the
// population standard deviation, in bytes per second, and each enabled
// check. The exit status is 0 when every enabled check passed, 1 when one
// failed or the run itself failed, and 2 for bad flags.
//
// # Expected values
//
// Rates are given per second and turned into bytes per tick as libevent
// does (truncated): c·tick and g·tick, with every burst four times its
// rate. The expected total is (g·tick − G)/tick. libevent computes
// g·tick − G/tick there, a unit bug that makes the value negative for its
// drain scenario and silently skips the check; this program checks the
// intended value. The expected average is the group's per-tick budget
// after the drain divided among the connections (integer division, as
// libevent), capped at the per-connection rate; with only -c it is that
// rate. libevent leaves the drain out of the average; it makes no
// difference when -c caps it, as in libevent's scenarios. A check runs
// only when its tolerance is above 0 and its expected value is above 0;
// the standard deviation check needs only its tolerance.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole program with its arguments and output streams, so
// that tests can run it: it parses args, runs the measurement, prints the
// report to stdout and problems to stderr, and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // parseOptions has said why, with the usage
	}
	res, err := measure(o)
	if err != nil {
		fmt.Fprintf(stderr, "ratelim: %v\n", err)
		return 1
	}
	if !report(stdout, stderr, o, res) {
		return 1
	}
	return 0
}
