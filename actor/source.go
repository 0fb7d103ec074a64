package actor

import (
	"fmt"
	"io"
)

// A source is the one way a transport's bytes come in: every read, on
// every transport, is a call of readInto, whoever makes it (the reader
// loop, or the actor itself on a socket it parks in or a readPuller), and
// what it brings reaches the actor's buffers through one function,
// actorState.landRead. What differs between a socket, a pair, a filter's
// underlying and any other net.Conn is only which source reads it
// (sourceFor):
//
//   - *rawSocket: a TCP or Unix socket's descriptor, read through
//     syscall.RawConn into a chunk taken once data is there;
//   - chunkSource: a BufferReader (a pair's pipe) or readPuller (a
//     filter's view of its underlying), which hands over whole chunks;
//   - byteSource: any other Transport, read with Read into a chunk.
type source interface {
	// readInto appends at most max (> 0) bytes to dst and returns how
	// many, with the error that ended the stream (io.EOF) or broke it,
	// or the deadline or close error that ended a wait. With wait it
	// first waits until there is something (a byte, the end, an error).
	// Without, it never waits and returns (0, nil) when nothing is there,
	// which a source that cannot look without waiting always does.
	readInto(dst *Buffer, max int, wait bool) (int, error)
}

// sourceFor returns the source of t: its side door sys (a socket), its
// chunk methods, or its Read. credit is what a pair's pipe asks, once the
// peer's data is there, how much it may take (see capReader).
func sourceFor(t Transport, sys sysConn, credit creditor) source {
	if sys != nil {
		return sys
	}
	br, _ := t.(BufferReader)
	pull, _ := t.(readPuller)
	if br == nil && pull == nil {
		return byteSource{t}
	}
	cs := &chunkSource{br: br, pull: pull, t: t}
	if cr, ok := t.(capReader); ok {
		cs.cr, cs.credit = cr, credit
	}
	return cs
}

// byteSource reads a Transport that has only Read: into a chunk it takes
// first, which it holds while Read waits.
type byteSource struct{ r io.Reader }

// readInto is source.readInto through Read. It cannot look without
// waiting.
func (s byteSource) readInto(dst *Buffer, max int, wait bool) (int, error) {
	if !wait {
		return 0, nil
	}
	c := newReadChunk(max)
	n, err := s.r.Read(c.free()[:max])
	c.commit(n)
	dst.pushChunk(c)
	return n, err
}

// chunkSource reads a transport that hands over whole chunks: waiting
// through ReadBuffer (capped by credit when the transport asks for it,
// capReader), without waiting through a readPuller's TryReadBuffer.
type chunkSource struct {
	t      Transport // read with Read when it is a readPuller only
	br     BufferReader
	pull   readPuller
	cr     capReader
	credit creditor
}

// readInto is source.readInto through the chunk methods. A count that
// does not match what dst gained is an error wrapping ErrInvalid.
func (s *chunkSource) readInto(dst *Buffer, max int, wait bool) (int, error) {
	before := dst.n
	var (
		n   int
		err error
	)
	method := "ReadBuffer"
	switch {
	case !wait && s.pull == nil:
		return 0, nil
	case !wait:
		method = "TryReadBuffer"
		n, err = s.pull.TryReadBuffer(dst, max)
	case s.cr != nil:
		n, err = s.cr.readBufferCapped(dst, max, s.credit)
	case s.br != nil:
		n, err = s.br.ReadBuffer(dst, max)
	default:
		return byteSource{s.t}.readInto(dst, max, wait)
	}
	got := dst.n - before
	if n != got && err == nil {
		err = fmt.Errorf("%w: transport's %s reported %d bytes and moved %d", ErrInvalid, method, n, got)
	}
	return got, err
}
