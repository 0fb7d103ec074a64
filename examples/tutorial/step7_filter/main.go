// Command step7_filter is the tutorial's seventh step (docs/tutorial.md):
// filters over the two ends of a pair compress what one side sends and
// decompress it for the other, neither side's code knowing.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// text is what the client sends: repetitive, so it compresses well.
var text = strings.Repeat("all work and no play makes jack a dull boy\n", 200)

// run sends text through a gzip filter on one end of a pair and a gunzip
// filter on the other, and prints how many bytes crossed the pair.
func run(w io.Writer) error {
	base := actor.NewBase()
	defer base.Close()
	rawClient, rawServer, err := actor.NewPair(base, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// snippet:step7
	var wire atomic.Int64 // compressed bytes, counted where they arrive
	count := pipeline.Tap(func(p []byte) { wire.Add(int64(len(p))) })
	client, err := pipeline.NewFilter(rawClient, nil, pipeline.Gzip(), actor.CloseOnFree)
	if err != nil {
		return err
	}
	server, err := pipeline.NewFilter(rawServer, pipeline.Chain(count, pipeline.Gunzip()), nil, actor.CloseOnFree)
	if err != nil {
		return err
	}

	in := server.In()
	if err := client.Send(ctx, []byte(text)); err != nil {
		return err
	}
	client.Flush(actor.Write, actor.Finished) // end the gzip stream, then the pair's
	var got bytes.Buffer
	for chunk := range in { // closed after the gunzipped stream's EOF
		got.Write(chunk)
	}
	fmt.Fprintf(w, "server received %d bytes, intact: %v, Err() = %v\n",
		got.Len(), got.String() == text, server.Err())
	fmt.Fprintf(w, "the pair carried %d bytes\n", wire.Load())
	// snippet:end
	return nil
}
