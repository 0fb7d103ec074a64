// Command step3_channels is the tutorial's third step (docs/tutorial.md):
// the server becomes a goroutine of ours that receives on In and answers
// with Send, and both sides end their streams cleanly.
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

// run has a channel-driven server upper-case what the client sends, then
// ends both streams and prints why each one ended.
func run(w io.Writer) error {
	base := actor.NewBase()
	defer base.Close()
	client, server, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}

	// snippet:step3-server
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	served := make(chan error, 1)
	go func() { // the server: our own goroutine, talking to its actor by channel
		for chunk := range server.In() { // closed after EOF or an error
			if err := server.Send(ctx, bytes.ToUpper(chunk)); err != nil {
				served <- err
				return
			}
		}
		fmt.Fprintf(w, "server: In closed, Err() = %v\n", server.Err())
		served <- server.Drain(ctx) // write what is left, send EOF, close
	}()
	// snippet:end

	// snippet:step3-client
	in := client.In()
	for _, line := range []string{"one\n", "two\n", "three\n"} {
		if err := client.Send(ctx, []byte(line)); err != nil { // waits while output is full
			return err
		}
	}
	client.Flush(actor.Write, actor.Finished) // "no more": the server reads EOF
	var got []byte
	for chunk := range in {
		got = append(got, chunk...)
	}
	if err := <-served; err != nil { // join the server goroutine
		return err
	}
	fmt.Fprintf(w, "client: received %q, Err() = %v\n", got, client.Err())
	// snippet:end
	return nil
}
