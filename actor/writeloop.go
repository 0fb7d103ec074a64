package actor

import (
	"fmt"
	"io"
	"net"

	"github.com/bevgo/bev/limiter"
)

// writeReq is one request to the writer loop: a batch of bytes, chunks
// for a BufferWriter, or the half-close. The actor sends one at a time
// (writing) and does not touch what it points to until the result comes.
type writeReq struct {
	bufs       *net.Buffers // views of output the actor will not touch until done
	buf        *Buffer      // or, for a BufferWriter, chunks handed over
	closeWrite bool         // half-close instead of writing
}

// write hands req to the writer loop, starting it the first time. The
// writer is started lazily because on a socket the actor writes directly
// whatever the kernel takes at once (tryWrite), so a connection that never
// fills its send buffer never needs the goroutine, nor its stack. Only the
// actor calls write, and only with no request in flight.
func (l *transportIO) write(req writeReq) {
	if !l.writerUp {
		l.writerUp = true
		l.writec = make(chan writeReq, 1)
		l.wg.Go(l.writeLoop)
	}
	l.writec <- req // buffered(1): nothing else in flight
}

// writeLoop is the writer goroutine: it takes one request at a time (a
// batch of bytes, chunks for a BufferWriter, or the half-close), waits for
// the transport to take it, and sends the result to the actor, waking it
// from its socket; it returns when stop quits.
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
			} else if req.buf != nil {
				res.n, res.err = l.writeBuffer(req.buf)
				if rs := l.rate.Load(); rs.limited() {
					rs.consume(limiter.Write, int(res.n))
				}
				if res.err != nil {
					req.buf.dropAll() // not taken: ours to drop
				} // else what a partialWriter left goes back to the output

			} else {
				res.n, res.err = l.writeBufs(req.bufs)
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

// writeBuffer hands buf to the BufferWriter, waiting, and returns what
// it took (see checkWriteBuffer).
func (l *transportIO) writeBuffer(buf *Buffer) (int64, error) {
	before := buf.n
	n, err := l.t.(BufferWriter).WriteBuffer(buf, true)
	_, partial := l.t.(partialWriter)
	return checkWriteBuffer(before, n, buf, err, !partial)
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

// writeBufs writes the batch, first waiting for the rate limit, and never
// hands the transport more than it allows.
func (l *transportIO) writeBufs(bufs *net.Buffers) (int64, error) {
	rs := l.rate.Load()
	if !rs.limited() {
		return bufs.WriteTo(l.t)
	}
	allow, err := rs.take(quitContext{l.quit}, limiter.Write, l.throttle(limiter.Write))
	if err != nil {
		return 0, err
	}
	l.trunc = l.trunc[:0]
	for _, p := range *bufs {
		if allow <= 0 {
			break
		}
		if int64(len(p)) > allow {
			p = p[:allow]
		}
		l.trunc = append(l.trunc, p)
		allow -= int64(len(p))
	}
	n, err := l.trunc.WriteTo(l.t)
	rs.consume(limiter.Write, int(n))
	return n, err
}
