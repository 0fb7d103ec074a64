// Command step8_relay is the tutorial's last step (docs/tutorial.md): a
// relay between two pairs, built from step 3's channels, whose sending side
// is rate-limited; backpressure carries the limit back to the source.
// Its test runs it on testing/synctest's fake clock.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/limiter"
)

func main() {
	if err := run(os.Stdout, 16<<10); err != nil {
		log.Fatal(err)
	}
}

const total = 64 << 10 // bytes the source sends

// run sends total bytes from a source through a relay whose output is
// limited to rate bytes a second, and prints how many bytes the sink has
// at each moment something arrives.
func run(w io.Writer, rate int64) error {
	base := actor.NewBase()
	defer base.Close()
	source, relayIn, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	relayOut, sink, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// snippet:step8-relay
	cfg, err := limiter.NewConfig(limiter.Max, limiter.Max, rate, rate, time.Second)
	if err != nil {
		return err
	}
	relayOut.SetRateLimit(cfg)                   // writes at most rate bytes a second
	relayOut.SetWatermark(actor.Write, 0, 8<<10) // Send waits above 8 KiB
	relayIn.SetWatermark(actor.Read, 0, 8<<10)   // In holds at most 8 KiB

	relayed := make(chan error, 1)
	go func() { // the relay: a Send that waits is a receive that waits
		for chunk := range relayIn.In() {
			if err := relayOut.Send(ctx, chunk); err != nil {
				relayed <- err
				return
			}
		}
		relayed <- relayOut.Flush(actor.Write, actor.Finished) // pass the EOF on
	}()
	// snippet:end

	// snippet:step8-ends
	start := time.Now()
	in := sink.In()
	source.Write(make([]byte, total)) // all at once: the relay holds it back
	source.Flush(actor.Write, actor.Finished)
	got, shown := 0, 0
	var at time.Duration
	for chunk := range in { // each moment's total, once the moment has passed
		if now := time.Since(start).Truncate(100 * time.Millisecond); now != at && got > shown {
			fmt.Fprintf(w, "%v: the sink has %d bytes\n", at, got)
			shown = got
		}
		at = time.Since(start).Truncate(100 * time.Millisecond)
		got += len(chunk)
	}
	fmt.Fprintf(w, "%v: the sink has %d bytes, then EOF\n", at, got)
	// snippet:end
	return <-relayed
}
