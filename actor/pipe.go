package actor

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/bevgo/bev/internal/deadline"
)

// pipe is one end of an in-memory, synchronous, full-duplex stream, the
// transport of a pair. It is net.Pipe's design (channels only, so it works
// inside testing/synctest bubbles) plus half-close: CloseWrite makes the
// peer's Read return io.EOF while this end can still read.
//
// A write blocks until the peer has consumed every byte, so bytes stay in
// the writer's output until the reader has room: the receiver's read
// watermark caps the transfer, as in libevent's pair.
//
// A writer offers its whole batch at once, and the reader takes what fits
// from as many of its pieces as it can, in one handoff. Besides io.Writer's
// byte slices the pipe carries chunks: it is a BufferWriter and a
// BufferReader, so the pair's writer loop hands over its output's chunks
// and the reader loop takes large chunks whole, and a bulk transfer moves
// pointers instead of copying bytes.
type pipe struct {
	wrMu sync.Mutex // serialises writes and guards following
	one  [1][]byte  // the vector of a plain Write
	onev net.Buffers
	off  offer

	rdRx <-chan *offer
	rdTx chan<- int
	wrTx chan<- *offer
	wrRx <-chan int

	onceClose     sync.Once
	localDone     chan struct{} // closed by Close
	remoteDone    <-chan struct{}
	onceWrite     sync.Once
	localWrDone   chan struct{} // closed by CloseWrite or Close
	remoteWrDone  <-chan struct{}
	readDeadline  *deadline.Deadline
	writeDeadline *deadline.Deadline
}

// offer is a writer's batch: byte slices (a plain Write) or a Buffer of
// chunks the writer owns (WriteBuffer). The reader consumes from the
// front; a chunk it takes whole becomes the reader's.
type offer struct {
	bufs *net.Buffers
	buf  *Buffer
	// short is set by a reader whose credit (its read high watermark, its
	// per-read maximum) was below what the batch held: a WriteBuffer then
	// returns the rest to its bufferevent instead of waiting to offer it.
	short bool
}

// len returns the bytes the offer still holds.
func (o *offer) len() int {
	if o.buf != nil {
		return o.buf.n
	}
	n := 0
	for _, p := range *o.bufs {
		n += len(p)
	}
	return n
}

// copyTo copies from the front of the batch into p and consumes it.
func (o *offer) copyTo(p []byte) int {
	if o.buf != nil {
		n := o.buf.Peek(p)
		o.buf.drain(n)
		return n
	}
	n := 0
	v := o.bufs
	for len(*v) > 0 && n < len(p) {
		k := copy(p[n:], (*v)[0])
		n += k
		if k == len((*v)[0]) {
			(*v)[0] = nil
			*v = (*v)[1:]
		} else {
			(*v)[0] = (*v)[0][k:]
		}
	}
	return n
}

// moveMin is the smallest chunk the reader takes whole rather than copying
// from: below it, gathering several small chunks into one saves handoffs.
const moveMin = 16 << 10

// newPipe returns the two connected ends.
func newPipe() (*pipe, *pipe) {
	cb1 := make(chan *offer)
	cb2 := make(chan *offer)
	cn1 := make(chan int)
	cn2 := make(chan int)
	done1 := make(chan struct{})
	done2 := make(chan struct{})
	wr1 := make(chan struct{})
	wr2 := make(chan struct{})
	p1 := &pipe{
		rdRx: cb1, rdTx: cn1, wrTx: cb2, wrRx: cn2,
		localDone: done1, remoteDone: done2,
		localWrDone: wr1, remoteWrDone: wr2,
		readDeadline: deadline.New(), writeDeadline: deadline.New(),
	}
	p2 := &pipe{
		rdRx: cb2, rdTx: cn2, wrTx: cb1, wrRx: cn1,
		localDone: done2, remoteDone: done1,
		localWrDone: wr2, remoteWrDone: wr1,
		readDeadline: deadline.New(), writeDeadline: deadline.New(),
	}
	return p1, p2
}

// receive waits for the peer's next offer.
func (p *pipe) receive() (*offer, error) {
	switch {
	case isClosedChan(p.localDone):
		return nil, io.ErrClosedPipe
	case isClosedChan(p.remoteDone), isClosedChan(p.remoteWrDone):
		return nil, io.EOF
	case isClosedChan(p.readDeadline.Wait()):
		return nil, os.ErrDeadlineExceeded
	}
	select {
	case o := <-p.rdRx:
		return o, nil
	case <-p.localDone:
		return nil, io.ErrClosedPipe
	case <-p.remoteDone:
		return nil, io.EOF
	case <-p.remoteWrDone:
		return nil, io.EOF
	case <-p.readDeadline.Wait():
		return nil, os.ErrDeadlineExceeded
	}
}

// Read waits for the partner's offer and copies from it into b (io.Reader).
// It returns io.EOF once the partner closed or half-closed, and
// os.ErrDeadlineExceeded after the read deadline.
func (p *pipe) Read(b []byte) (int, error) {
	o, err := p.receive()
	if err != nil {
		return 0, err
	}
	n := o.copyTo(b)
	p.rdTx <- n
	return n, nil
}

// ReadBuffer implements BufferReader: it appends to dst what one handoff
// takes, at most max bytes: the peer's next chunks themselves while they
// are large and fit, else one new chunk filled from the front of the
// peer's batch.
func (p *pipe) ReadBuffer(dst *Buffer, max int) (int, error) {
	return p.readBufferCapped(dst, max, nil)
}

// capReader is a BufferReader that can ask how much the reader may take
// at the moment data arrives rather than when it began to wait: the
// pipe, so that a pair caps each transfer at the receiver's read high
// watermark less its input whenever the watermark was set, as
// libevent's pair does. credit.allowed is called once the peer's data is
// there; when it is not positive nothing is taken, and the read returns 0
// and a nil error (the peer's data stays offered).
type capReader interface {
	readBufferCapped(dst *Buffer, max int, credit creditor) (int, error)
}

// creditor says how much a reader may take now: the reader loop's
// transportIO. It is an interface rather than a func so that passing the
// transportIO costs no allocation and no field to cache a method value in.
type creditor interface{ allowed() int64 }

// readBufferCapped is ReadBuffer capped, once the peer's data is there,
// by what credit allows (no cap with a nil credit).
func (p *pipe) readBufferCapped(dst *Buffer, max int, credit creditor) (int, error) {
	o, err := p.receive()
	if err != nil {
		return 0, err
	}
	if credit != nil {
		if a := credit.allowed(); a < int64(max) {
			max = int(a)
		}
		if max <= 0 {
			o.short = true
			p.rdTx <- 0
			return 0, nil
		}
	}
	if max < o.len() {
		o.short = true
	}
	total := 0
	if src := o.buf; src != nil {
		for src.n > 0 {
			c := src.chunks[src.head]
			if c.len() < moveMin || total+c.len() > max {
				break
			}
			total += c.len()
			dst.push(src.popFront())
		}
	}
	if total == 0 {
		c := newChunk(min(o.len(), max))
		buf := c.free()
		if len(buf) > max {
			buf = buf[:max]
		}
		c.commit(o.copyTo(buf))
		total = c.len()
		dst.pushChunk(c)
	}
	p.rdTx <- total
	return total, nil
}

// Write offers b to the partner and waits until it has taken all of it
// (io.Writer). It fails with io.ErrClosedPipe on a closed end,
// errWriteClosed on an end closed for writing (CloseWrite),
// errPartnerClosed when the partner is gone, and os.ErrDeadlineExceeded
// after the write deadline.
func (p *pipe) Write(b []byte) (int, error) {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	p.one[0] = b
	p.onev = p.one[:]
	p.off = offer{bufs: &p.onev}
	n, err := p.writeLocked()
	p.one[0] = nil
	p.off = offer{}
	return int(n), err
}

// WriteBuffer implements BufferWriter: it offers src's chunks, which the
// caller owns, and the reader takes them, whole or by copying. On error
// what was not taken is still in src and still the caller's. Every
// transfer is a rendezvous with the reader, so without wait it takes
// nothing. With wait it returns early, after a transfer in which the
// reader's credit was less than src held (its read high watermark capped
// it), taking what it took: the rest is still in src, and the writer's
// bufferevent puts it back at the front of its output (see partialWriter),
// so that the sender sees what its partner took, as in libevent's pair.
func (p *pipe) WriteBuffer(src *Buffer, wait bool) (int64, error) {
	if !wait {
		return 0, nil
	}
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	p.off = offer{buf: src}
	n, err := p.writeLocked()
	p.off = offer{}
	return n, err
}

// partialWrites marks the pipe as a partialWriter.
func (p *pipe) partialWrites() {}

// partialWriter is a BufferWriter whose waiting WriteBuffer may return
// early, with no error, once it took part of src: what is left goes back
// to the front of the output instead of being an io.ErrShortWrite.
type partialWriter interface{ partialWrites() }

// writeLocked offers p.off to the partner, under wrMu, until it is taken
// or the write fails; it returns the bytes taken.
func (p *pipe) writeLocked() (int64, error) {
	switch {
	case isClosedChan(p.localDone):
		return 0, io.ErrClosedPipe
	case isClosedChan(p.localWrDone):
		return 0, errWriteClosed
	case isClosedChan(p.remoteDone):
		return 0, errPartnerClosed
	case isClosedChan(p.writeDeadline.Wait()):
		return 0, os.ErrDeadlineExceeded
	}
	var n int64
	for p.off.len() > 0 {
		if p.off.short && p.off.buf != nil {
			return n, nil // a WriteBuffer: the rest goes back to the output
		}
		select {
		case p.wrTx <- &p.off:
			n += int64(<-p.wrRx)
		case <-p.localDone:
			return n, io.ErrClosedPipe
		case <-p.remoteDone:
			return n, errPartnerClosed
		case <-p.writeDeadline.Wait():
			return n, os.ErrDeadlineExceeded
		}
	}
	return n, nil
}

// CloseWrite half-closes: the peer's Read returns io.EOF.
func (p *pipe) CloseWrite() error {
	p.onceWrite.Do(func() { close(p.localWrDone) })
	return nil
}

// Close closes both directions: the peer reads io.EOF and its writes fail.
func (p *pipe) Close() error {
	p.onceClose.Do(func() { close(p.localDone) })
	p.CloseWrite()
	return nil
}

// SetReadDeadline sets the deadline of Read; it fails with
// io.ErrClosedPipe on a closed end.
func (p *pipe) SetReadDeadline(t time.Time) error {
	if isClosedChan(p.localDone) {
		return io.ErrClosedPipe
	}
	p.readDeadline.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline of Write; it fails with
// io.ErrClosedPipe on a closed end.
func (p *pipe) SetWriteDeadline(t time.Time) error {
	if isClosedChan(p.localDone) {
		return io.ErrClosedPipe
	}
	p.writeDeadline.Set(t)
	return nil
}

// The errors of a write a socketpair would fail with EPIPE: they match
// both io.ErrClosedPipe and syscall.EPIPE, so that code written for
// either a socket or a pipe sees what it expects.
var (
	// errPartnerClosed: a write to a pipe whose other end is closed.
	errPartnerClosed error = brokenPipeError("actor: pair partner closed: broken pipe")
	// errWriteClosed: a write after this end's CloseWrite, as a
	// socket's after shutdown(SHUT_WR).
	errWriteClosed error = brokenPipeError("actor: pair end closed for writing: broken pipe")
)

// brokenPipeError is a pipe's EPIPE, with its message.
type brokenPipeError string

// Error returns the message.
func (e brokenPipeError) Error() string { return string(e) }

// Is reports that the error is io.ErrClosedPipe and syscall.EPIPE.
func (brokenPipeError) Is(target error) bool {
	return target == io.ErrClosedPipe || target == syscall.EPIPE
}

// isClosedChan reports, without waiting, whether c is closed.
func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
