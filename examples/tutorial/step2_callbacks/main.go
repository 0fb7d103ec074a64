// Command step2_callbacks is the tutorial's second step (docs/tutorial.md):
// the server of step 1 now answers from callbacks, which run on its own
// actor goroutine and work on its buffers directly.
package main

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/bevgo/bev/actor"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run sends two lines to an upper-casing server, prints the answer, then
// closes the client and prints the event the server saw.
func run(w io.Writer) error {
	base := actor.NewBase()
	defer base.Close()

	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	// snippet:step2-callbacks
	events := make(chan actor.Event, 1)
	server.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { // on the server's actor goroutine
			for {
				line, err := s.Input().ReadLine(actor.EOLLF)
				if err != nil {
					return // no complete line yet: wait for more input
				}
				s.Write(append(bytes.ToUpper(line), '\n'))
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			events <- ev // hand the news to our goroutine; never print from here
			s.Close()
		},
	})
	server.Enable(actor.Read) // reading starts disabled, as in libevent
	// snippet:end

	// snippet:step2-client
	in := client.In()
	client.Write([]byte("hello\ncallbacks\n"))
	var got []byte
	for len(got) < len("HELLO\nCALLBACKS\n") {
		chunk, ok := <-in
		if !ok { // closed: the stream ended early, and Err says why
			return client.Err()
		}
		got = append(got, chunk...)
	}
	fmt.Fprintf(w, "client received %q\n", got)
	client.Close() // the server reads EOF
	fmt.Fprintf(w, "server saw %v\n", <-events)
	// snippet:end
	return nil
}
