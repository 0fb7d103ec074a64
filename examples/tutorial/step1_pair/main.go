// Command step1_pair is the tutorial's first step (docs/tutorial.md): two
// bufferevents wired to each other in memory, one writing, the other
// reading, and nothing left running at the end.
package main

import (
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

// run writes "hello, pair" into one end of a pair and prints what the other
// end receives.
func run(w io.Writer) error {
	// snippet:step1
	base := actor.NewBase()
	defer base.Close() // closes and joins every bufferevent it owns

	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	in := b.In() // b's input as a channel; asking for it enables reading
	if err := a.Write([]byte("hello, pair")); err != nil {
		return err // Write never blocks: it queues on a's output
	}
	fmt.Fprintf(w, "b received %q\n", <-in)
	// snippet:end
	return nil
}
