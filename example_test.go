package bev_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/bevgo/bev/actor"
)

// Two bufferevents in memory: a callback-driven upper-casing server and a
// channel-driven client.
func Example() {
	base := actor.NewBase()
	defer base.Close() // closes and joins every bufferevent it owns

	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		panic(err)
	}
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		p := make([]byte, s.Input().Len())
		s.Read(p)
		s.Write(bytes.ToUpper(p))
	}})
	server.Enable(actor.Read) // reading starts disabled, as in libevent

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in := client.In() // asking for input enables reading
	if err := client.Send(ctx, []byte("hello, bev")); err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", <-in)
	// Output: HELLO, BEV
}
