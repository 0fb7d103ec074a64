// Command step4_backpressure is the tutorial's fourth step
// (docs/tutorial.md): a fast producer, a slow consumer, and watermarks that
// make the producer wait instead of filling memory.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
)

func main() {
	// A program cannot know when every goroutine has settled, so main
	// gives them a moment between looks; the test uses synctest.Wait,
	// which knows.
	settle := func() { time.Sleep(10 * time.Millisecond) }
	if err := run(os.Stdout, settle); err != nil {
		log.Fatal(err)
	}
}

const (
	piece     = 1 << 10    // the producer sends 1 KiB at a time
	total     = 64 * piece // and 64 KiB in all
	readHigh  = 4 * piece  // the consumer's read high watermark
	writeHigh = 2 * piece  // the producer's write high watermark
)

// look is what the consumer sees each time everything has settled.
type look struct {
	took, sent   int // bytes the consumer has received, the producer has sent
	holds, queue int // the consumer's input, the producer's output
}

// run prints what watch sees.
func run(w io.Writer, settle func()) error {
	looks, err := watch(settle, readHigh)
	for _, l := range looks {
		fmt.Fprintf(w, "took %5d  sent %5d  in between %4d  (consumer holds %4d, producer queues %4d)\n",
			l.took, l.sent, l.sent-l.took, l.holds, l.queue)
	}
	return err
}

// watch has a producer send total bytes as fast as it can to a consumer
// that takes one chunk each time settle returns, and records what it sees
// before each chunk.
func watch(settle func(), readHigh int) ([]look, error) {
	base := actor.NewBase()
	defer base.Close()
	producer, consumer, err := actor.NewPair(base, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// snippet:step4
	producer.SetWatermark(actor.Write, 0, writeHigh) // Send waits while this much is queued
	consumer.SetWatermark(actor.Read, 0, readHigh)   // reading stops at this much unread
	in := consumer.In()

	var sent atomic.Int64
	done := make(chan error, 1)
	go func() { // the producer: as fast as Send lets it
		p := make([]byte, piece)
		for sent.Load() < total {
			if err := producer.Send(ctx, p); err != nil {
				done <- err
				return
			}
			sent.Add(piece)
		}
		done <- nil
	}()

	var looks []look
	for took := 0; took < total; { // the consumer: one chunk per look
		settle() // let every goroutine run until it waits
		looks = append(looks, look{took, int(sent.Load()), consumer.InputLen(), producer.OutputLen()})
		chunk, ok := <-in
		if !ok {
			return looks, consumer.Err()
		}
		took += len(chunk)
	}
	// snippet:end
	return looks, <-done
}
