// Chat is a broadcast chat server on bev: every line a client sends goes to
// every other client, prefixed with the sender's address.
//
// Run it with
//
//	go run ./examples/chat -addr 127.0.0.1:9001
//
// and connect a few terminals with `nc 127.0.0.1 9001`.
//
// It shows one actor per connection and a hub between them. Each
// connection's read callback, running on that connection's own actor
// goroutine, cuts complete lines out of its input and hands them to the hub,
// which appends them to every other member's output with Write: a call that
// queues and never blocks, so one member can never stall another. A member
// that stops reading is the one risk, since its output would grow without
// bound; the hub checks each member's queued output and disconnects a member
// whose backlog passes -max-queue. SIGINT or SIGTERM closes the listener and
// every connection; nothing is left running.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	maxQueue := flag.Int("max-queue", 1<<20, "bytes a member may have queued before it is disconnected")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *maxQueue, log, nil); err != nil {
		log.Error("chat", "err", err)
		os.Exit(1)
	}
}
