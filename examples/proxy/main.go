package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	go onSignals(cancel, func(sig os.Signal) {
		if logs := exitLogs.Load(); logs != nil {
			logs.Flush() // the lines of connections that did finish
		}
		fmt.Fprintf(os.Stderr, "proxy: second %v: exiting without waiting for open connections\n", sig)
		os.Exit(exitCode(sig))
	})
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// exitLogs is the log writer of the proxy main runs, which a second
// signal flushes before it exits at once.
var exitLogs atomic.Pointer[logWriter]

// onSignals waits for SIGINT or SIGTERM: the first ends the proxy's
// context (run then drains and exits), a second one calls again, which
// exits at once, as users expect of a second ^C. It runs until the
// process exits.
func onSignals(cancel context.CancelCauseFunc, again func(os.Signal)) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	cancel(fmt.Errorf("%v received", sig))
	again(<-sigs)
}

// exitCode is the shell's status for a process ended by sig: 128 plus
// its number (130 for SIGINT).
func exitCode(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// run is the whole program: it parses args, relays until ctx ends (the
// signal), drains, prints the totals and returns the exit status: 0 after
// a clean shutdown, 2 for bad flags or an unusable address (one line on
// stderr), 1 if the listener failed while running or -group-redis's Redis
// did not answer.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return 2
	}
	// Everything run writes to stderr from here on goes through the log's
	// writer, in order; returning flushes it.
	logs := newLogWriter(stderr, cfg.logFlush)
	defer logs.Close()
	exitLogs.Store(logs)
	defer exitLogs.CompareAndSwap(logs, nil)
	stderr = logs
	log := slog.New(urgentFlush{slog.NewTextHandler(logs, &slog.HandlerOptions{Level: cfg.logLevel}), logs})
	p, err := newProxy(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return setupStatus(err)
	}
	api, err := startAPI(cfg, log)
	if err != nil {
		p.close()
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return 2
	}
	defer api.close()
	p.greet(stdout)
	api.greet(stdout)
	select {
	case <-ctx.Done():
	case <-p.ln.Done(): // the listener failed
	}
	lnErr := p.ln.Err()
	p.shutdown(errors.Join(context.Cause(ctx), lnErr))
	p.printTotals(stdout)
	if lnErr != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", lnErr)
		return 1
	}
	return 0
}
