// Command step6_leak is the tutorial's sixth step (docs/tutorial.md): a
// function that forgets to close its Base leaves goroutines running;
// goleak finds them, and Close fixes it.
package main

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/bevgo/bev/actor"
	"go.uber.org/goleak"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// snippet:step6-leaky

// leaky exchanges one message over a pair and returns, leaving the pair's
// actors, their loops and the Base's dispatcher running: nothing closed
// them. It returns the Base so that the caller can show the fix.
func leaky() (*actor.Base, error) {
	base := actor.NewBase()
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		return base, err
	}
	in := b.In()
	a.Write([]byte("hello"))
	<-in
	return base, nil
}

// snippet:end

// snippet:step6-fixed

// fixed is leaky with the one line it lacked.
func fixed() error {
	base := actor.NewBase()
	defer base.Close() // closes every bufferevent and waits for their goroutines
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	in := b.In()
	a.Write([]byte("hello"))
	<-in
	return nil
}

// snippet:end

// run shows goleak's verdict after leaky, after closing what it left, and
// after fixed.
func run(w io.Writer) error {
	// snippet:step6-run
	base, err := leaky()
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "after leaky: leak found:", goleak.Find() != nil)
	base.Close()
	fmt.Fprintln(w, "after Close: leak found:", goleak.Find() != nil)
	if err := fixed(); err != nil {
		return err
	}
	fmt.Fprintln(w, "after fixed: leak found:", goleak.Find() != nil)
	// snippet:end
	return nil
}
