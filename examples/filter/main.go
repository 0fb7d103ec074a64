// Filter shows gzip as a pipeline stage between two TCP sockets: the
// client compresses what it sends and decompresses what it reads, the
// server the other way round, and neither program touches gzip itself.
//
// Run it with
//
//	go run ./examples/filter
//
// Each side is a filter bufferevent stacked on a socket bufferevent:
// pipeline.NewFilter(socket, Gunzip(), Gzip(), …). The stages run on the
// filter's actor goroutine, so the compressor keeps its state with no lock.
// A Counter stage under the client's gzip counts the compressed bytes on
// the wire. Drain flushes the compressor with Finished, writes its trailer,
// then half-closes: the server's Gunzip sees the end of the stream, checks
// it, and the server's filter reports EOF after the last byte.
package main

import (
	"log"
	"os"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}
