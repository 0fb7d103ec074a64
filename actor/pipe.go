package actor

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipe is one end of an in-memory, synchronous, full-duplex stream, the
// transport of a pair. It is net.Pipe's design (channels only, so it works
// inside testing/synctest bubbles) plus half-close: CloseWrite makes the
// peer's Read return io.EOF while this end can still read.
//
// A Write blocks until the peer's Reads have consumed every byte, so bytes
// stay in the writer's output until the reader has room: the receiver's
// read watermark caps the transfer, as in libevent's pair.
type pipe struct {
	wrMu sync.Mutex // serialises writes and guards one
	one  [1][]byte  // the vector of a plain Write
	onev net.Buffers

	// A writer offers its whole vector; the reader copies what fits from
	// as many of its slices as it can, consumes them, and replies with the
	// count: one handoff per read, however the writer's bytes are chunked.
	rdRx <-chan *net.Buffers
	rdTx chan<- int
	wrTx chan<- *net.Buffers
	wrRx <-chan int

	onceClose     sync.Once
	localDone     chan struct{} // closed by Close
	remoteDone    <-chan struct{}
	onceWrite     sync.Once
	localWrDone   chan struct{} // closed by CloseWrite or Close
	remoteWrDone  <-chan struct{}
	readDeadline  *pipeDeadline
	writeDeadline *pipeDeadline
}

// newPipe returns the two connected ends.
func newPipe() (*pipe, *pipe) {
	cb1 := make(chan *net.Buffers)
	cb2 := make(chan *net.Buffers)
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
		readDeadline: newPipeDeadline(), writeDeadline: newPipeDeadline(),
	}
	p2 := &pipe{
		rdRx: cb2, rdTx: cn2, wrTx: cb1, wrRx: cn1,
		localDone: done2, remoteDone: done1,
		localWrDone: wr2, remoteWrDone: wr1,
		readDeadline: newPipeDeadline(), writeDeadline: newPipeDeadline(),
	}
	return p1, p2
}

func (p *pipe) Read(b []byte) (int, error) {
	switch {
	case isClosedChan(p.localDone):
		return 0, io.ErrClosedPipe
	case isClosedChan(p.remoteDone), isClosedChan(p.remoteWrDone):
		return 0, io.EOF
	case isClosedChan(p.readDeadline.wait()):
		return 0, os.ErrDeadlineExceeded
	}
	select {
	case v := <-p.rdRx:
		nr := 0
		for len(*v) > 0 && nr < len(b) {
			c := copy(b[nr:], (*v)[0])
			nr += c
			if c == len((*v)[0]) {
				(*v)[0] = nil
				*v = (*v)[1:]
			} else {
				(*v)[0] = (*v)[0][c:]
			}
		}
		p.rdTx <- nr
		return nr, nil
	case <-p.localDone:
		return 0, io.ErrClosedPipe
	case <-p.remoteDone:
		return 0, io.EOF
	case <-p.remoteWrDone:
		return 0, io.EOF
	case <-p.readDeadline.wait():
		return 0, os.ErrDeadlineExceeded
	}
}

func (p *pipe) Write(b []byte) (int, error) {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	p.one[0] = b
	p.onev = p.one[:]
	n, err := p.writeLocked(&p.onev)
	p.one[0] = nil
	return int(n), err
}

// writeBuffers writes the whole vector, consuming it as net.Buffers.WriteTo
// does; the writer loop uses it so that a batch is one handoff.
func (p *pipe) writeBuffers(v *net.Buffers) (int64, error) {
	p.wrMu.Lock()
	defer p.wrMu.Unlock()
	return p.writeLocked(v)
}

func (p *pipe) writeLocked(v *net.Buffers) (int64, error) {
	switch {
	case isClosedChan(p.localDone), isClosedChan(p.localWrDone):
		return 0, io.ErrClosedPipe
	case isClosedChan(p.remoteDone):
		return 0, io.ErrClosedPipe
	case isClosedChan(p.writeDeadline.wait()):
		return 0, os.ErrDeadlineExceeded
	}
	var n int64
	for len(*v) > 0 {
		select {
		case p.wrTx <- v:
			n += int64(<-p.wrRx)
		case <-p.localDone:
			return n, io.ErrClosedPipe
		case <-p.remoteDone:
			return n, io.ErrClosedPipe
		case <-p.writeDeadline.wait():
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

func (p *pipe) SetReadDeadline(t time.Time) error {
	if isClosedChan(p.localDone) {
		return io.ErrClosedPipe
	}
	p.readDeadline.set(t)
	return nil
}

func (p *pipe) SetWriteDeadline(t time.Time) error {
	if isClosedChan(p.localDone) {
		return io.ErrClosedPipe
	}
	p.writeDeadline.set(t)
	return nil
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// pipeDeadline is net.Pipe's deadline: a channel closed when the deadline
// passes, replaced when the deadline is moved.
type pipeDeadline struct {
	mu     sync.Mutex // guards following
	timer  *time.Timer
	cancel chan struct{}
}

func newPipeDeadline() *pipeDeadline {
	return &pipeDeadline{cancel: make(chan struct{})}
}

func (d *pipeDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // wait for the timer callback to finish and close cancel
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		d.timer = time.AfterFunc(dur, func() { close(d.cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

func (d *pipeDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}
