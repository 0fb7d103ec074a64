package actor

import (
	"fmt"
	"io"

	"github.com/bevgo/bev/limiter"
)

// writeReq is one request to the writer loop: write the sink's batch, or
// half-close. The actor sends one at a time (writing) and does not touch
// the batch until the result comes.
type writeReq struct {
	closeWrite bool // half-close instead of writing
}

// write hands req to the writer loop, starting it the first time. The
// writer is started lazily because a socket's sink writes directly
// whatever the kernel takes at once, so a connection that never fills
// its send buffer never needs the goroutine, nor its stack. Only the
// actor calls write, and only with no request in flight.
func (l *transportIO) write(req writeReq) {
	if !l.writerUp {
		l.makeChans()
		l.writerUp = true
		l.writec = make(chan writeReq, 1)
		l.wg.Go(l.writeLoop)
	}
	l.writec <- req // buffered(1): nothing else in flight
}

// writeLoop is the writer goroutine: it takes one request at a time (the
// sink's batch, or the half-close), waits for the transport to take it,
// and sends the result to the actor, waking it from its socket; it
// returns when stop quits.
func (l *transportIO) writeLoop() {
	for {
		select {
		case req := <-l.writec:
			res := loopEvent{wrote: true}
			if req.closeWrite {
				res.closeWrite = true
				if cw, ok := l.t.(closeWriter); ok {
					res.err = cw.CloseWrite()
				}
			} else {
				res.n, res.err = l.writeOut()
			}
			select {
			case l.events <- res:
				l.park.wake() // the actor may be waiting in the socket
			case <-l.quit:
				return
			}
		case <-l.quit:
			return
		}
	}
}

// writeOut writes the sink's batch, waiting: under a rate limit it first
// waits for an allowance and writes no more than it (what is left goes
// back to the output; the actor hands it over again).
func (l *transportIO) writeOut() (int64, error) {
	rs := l.rate.Load()
	if !rs.limited() {
		return l.out.write(noLimit, true)
	}
	allow, err := rs.take(quitContext{l.quit}, limiter.Write, l.throttle(limiter.Write))
	if err != nil {
		return 0, err
	}
	n, err := l.out.write(allow, true)
	rs.consume(limiter.Write, int(n))
	return n, err
}

// checkWriteBuffer returns what a BufferWriter took from buf, which held
// before bytes, and the error to report: an error wrapping ErrInvalid
// when the count n it returned does not match, and io.ErrShortWrite when
// a waiting call took less without saying why.
func checkWriteBuffer(before int, n int64, buf *Buffer, err error, wait bool) (int64, error) {
	taken := int64(before - buf.n)
	if err == nil {
		switch {
		case n != taken:
			err = fmt.Errorf("%w: transport's WriteBuffer reported %d bytes and took %d", ErrInvalid, n, taken)
		case wait && buf.n > 0:
			err = io.ErrShortWrite
		}
	}
	return taken, err
}
