package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
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
	log := slog.New(slog.NewTextHandler(stderr, nil))
	p, err := newProxy(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "proxy: %v\n", err)
		return setupStatus(err)
	}
	p.greet(stdout)
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
