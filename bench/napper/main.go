//go:build linux

// Command napper does nothing but sleep 20 µs at a time (nanosleep(2),
// which time.Sleep would round up to the poller's millisecond), as the Go
// runtime's monitor thread (sysmon) does while it is awake. Run beside an
// echo server under a single ping-pong (bench/loadgen -mode pingpong
// -conns 1), it shows how much of the round trip is the time an idle vCPU
// takes to wake: docs/benchmarks.md, "System calls: why writes are not
// raw".
//
//	usage: napper [-for 6s] [-nap 20us]
package main

import (
	"flag"
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	total := flag.Duration("for", 6*time.Second, "how long to run")
	nap := flag.Duration("nap", 20*time.Microsecond, "each sleep")
	flag.Parse()
	if *total <= 0 || *nap <= 0 {
		fmt.Fprintln(os.Stderr, "napper: -for and -nap must be positive")
		os.Exit(2)
	}
	ts := syscall.NsecToTimespec(nap.Nanoseconds())
	end := time.Now().Add(*total)
	for time.Now().Before(end) {
		syscall.Nanosleep(&ts, nil) //nolint:errcheck // an interrupted nap is as good
	}
}
