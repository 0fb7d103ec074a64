// Echo is a TCP echo server built on bev: every byte a client sends comes
// back to it, in order, until the client closes.
//
// Run it with
//
//	go run ./examples/echo -addr 127.0.0.1:9000
//
// and talk to it with any TCP client, for example
//
//	nc 127.0.0.1 9000
//
// It logs with log/slog to standard error and exits cleanly, closing every
// connection, on SIGINT or SIGTERM. It is the program the benchmark
// harness measures (see docs/benchmarks.md), so it is written the plain
// way: a read callback that moves the input to the output without
// copying, le-proxy's backpressure (stop reading while a client that does
// not read its echo has maxQueued bytes waiting, resume once half of them
// are out), and a close on EOF or error once the output has drained.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, log); err != nil {
		log.Error("echo", "err", err)
		os.Exit(1)
	}
}

// run serves echo on addr until ctx ends, then closes the listener and
// every connection.
func run(ctx context.Context, addr string, log *slog.Logger) error {
	base := actor.NewBase()
	ln, err := conn.Listen(base, "tcp", addr, conn.ListenerConfig{Options: actor.CloseOnFree}, serve)
	if err != nil {
		base.Close()
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case <-ln.Done():
	}
	lnErr := ln.Err()
	if err := base.Close(); err != nil { // closes the listener and every connection
		return fmt.Errorf("close: %w", err)
	}
	if lnErr != nil && !errors.Is(lnErr, net.ErrClosed) {
		return lnErr
	}
	log.Info("stopped")
	return nil
}

// serve sets up one accepted connection: echo what arrives, and close once
// the client has finished and everything has been sent back.
func serve(s *conn.Socket) {
	closing := false // touched only by this socket's callbacks
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			s.Output().MoveFrom(s.Input())
			if s.Output().Len() >= maxQueued {
				s.Disable(actor.Read) // the client is not keeping up
			}
		},
		Write: func(s *actor.Session) { // the output is down to maxQueued/2
			if closing && s.Output().Len() == 0 {
				s.Close()
				return
			}
			if !closing && s.Enabled()&actor.Read == 0 {
				s.Enable(actor.Read)
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			switch {
			case ev&actor.Error != 0:
				s.Close()
			case ev&actor.EOF != 0:
				if s.Output().Len() == 0 {
					s.Close()
					return
				}
				closing = true
			}
		},
	})
	s.SetWatermark(actor.Write, maxQueued/2, 0)
	s.Enable(actor.Read | actor.Write)
}

// maxQueued is how much echo may wait for a client before reading pauses.
const maxQueued = 64 << 10
