package bev_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"time"

	"github.com/bevgo/bev/actor"
)

// Two bufferevents in memory: a callback-driven upper-casing server and a
// channel-driven client. This is the first snippet of README.md and of the
// package documentation (doc.go), verbatim: TestDocSnippets checks that
// they stay so.
func Example() {
	// snippet:first-program
	base := actor.NewBase()
	defer base.Close() // closes and joins every bufferevent it owns

	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		log.Fatal(err)
	}
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		p := make([]byte, s.Input().Len())
		s.Input().Read(p)
		s.Write(bytes.ToUpper(p)) // runs on the server's actor goroutine
	}})
	server.Enable(actor.Read) // reading starts disabled, as in libevent

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in := client.In() // asking for input enables reading
	if err := client.Send(ctx, []byte("hello, bev")); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", <-in) // HELLO, BEV
	// snippet:end

	// Output: HELLO, BEV
}
