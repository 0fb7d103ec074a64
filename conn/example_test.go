package conn_test

import (
	"context"
	"fmt"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

// An echo server and a client that connects to it, says hello, and
// prints the answer.
func ExampleListen() {
	base := actor.NewBase()
	defer base.Close() // closes the listener and every socket

	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			s.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
			})
			s.Enable(actor.Read | actor.Write)
		})
	if err != nil {
		fmt.Println(err)
		return
	}

	client, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		fmt.Println(err)
		return
	}
	answer := make(chan string, 1)
	client.SetWatermark(actor.Read, 5, 0) // wait for all five bytes
	client.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			p := make([]byte, s.Input().Len())
			s.Read(p)
			answer <- string(p)
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			fmt.Println("client:", ev)
		},
	})
	client.Enable(actor.Read)
	client.Write([]byte("hello")) // sent once connected
	if err := client.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("echo:", <-answer)
	// Close the client before the Base closes the server's end, which the
	// client would otherwise report as an EOF on the way out.
	client.Close()
	// Output:
	// client: Connected
	// echo: hello
}
