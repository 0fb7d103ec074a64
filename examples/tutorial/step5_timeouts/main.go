// Command step5_timeouts is the tutorial's fifth step (docs/tutorial.md):
// a read timeout that progress keeps restarting, and that fires once the
// peer goes quiet. Its test runs it on testing/synctest's fake clock.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/bevgo/bev/actor"
)

func main() {
	if err := run(os.Stdout, 60*time.Millisecond); err != nil {
		log.Fatal(err)
	}
}

// run has a client write "tick" three times, every interval, to a server
// whose read timeout is 100 ms, and prints when the timeout fired.
func run(w io.Writer, interval time.Duration) error {
	base := actor.NewBase()
	defer base.Close()
	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}

	// snippet:step5
	start := time.Now()
	fired := make(chan string, 1)
	server.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { s.Input().Drain(s.Input().Len()) },
		Event: func(s *actor.Session, ev actor.Event, err error) {
			// Reading|Timeout: reading is now disabled, so it fires once.
			fired <- fmt.Sprintf("%v after %v", ev, time.Since(start).Round(10*time.Millisecond))
		},
	})
	server.SetTimeouts(100*time.Millisecond, 0) // read timeout; 0: no write timeout
	server.Enable(actor.Read)

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for range 3 {
		<-ticker.C
		client.Write([]byte("tick")) // progress: the server's timer starts again
	}
	fmt.Fprintln(w, <-fired)
	// snippet:end
	return nil
}
