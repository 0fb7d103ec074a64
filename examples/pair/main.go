// Command pair shows two bufferevents talking in memory, one through
// channels and one through callbacks, with nothing left running at exit.
//
// Run it with:
//
//	go run ./examples/pair
//
// The client sends a few lines with Send and reads the replies from In;
// the server's read callback, which runs on its own actor goroutine,
// upper-cases every complete line in place. Closing the Base closes and
// joins both bufferevents.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/bevgo/bev/actor"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(w io.Writer) error {
	base := actor.NewBase()
	defer base.Close() // closes and joins every bufferevent it owns

	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		for {
			line, err := s.Input().ReadLine(actor.EOLLF)
			if err != nil {
				return // no complete line yet
			}
			s.Write(append(bytes.ToUpper(line), '\n'))
		}
	}})
	server.Enable(actor.Read)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	text := "hello, bufferevent\nno goroutine is left behind\nbye\n"
	in := client.In() // enables reading on the client
	if err := client.Send(ctx, []byte(text)); err != nil {
		return err
	}
	var got bytes.Buffer
	for got.Len() < len(text) {
		select {
		case chunk := <-in:
			got.Write(chunk)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_, err = fmt.Fprint(w, got.String())
	return err
}
