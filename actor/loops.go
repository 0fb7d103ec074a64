package actor

import (
	"errors"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Chunk sizes the reader loop reads into. It starts small so that an idle
// connection holds little memory, and grows while reads fill the chunk.
const (
	minReadChunk = 512
	maxReadChunk = 64 << 10
)

// noLimit is the reader's credit when no watermark bounds it.
const noLimit = math.MaxInt64

type readResult struct {
	c   *chunk // nil or a chunk holding what was read
	err error
}

type writeReq struct {
	bufs       *net.Buffers // views of output the actor will not touch until done
	closeWrite bool         // half-close instead of writing
}

type writeResult struct {
	n          int64
	err        error
	closeWrite bool
}

// loops are the reader and writer goroutines of one transport. The actor
// starts them when it gets a transport and joins them (stop) before it
// drops the transport or exits.
type loops struct {
	t    Transport
	quit chan struct{}
	wg   sync.WaitGroup

	// The reader may read while inflight < limit. The actor stores limit
	// (what the input may still take) and subtracts from inflight what it
	// has appended; the reader adds what it read. The actor lowers limit
	// before it lowers inflight, so the reader can only underestimate.
	limit    atomic.Int64
	inflight atomic.Int64
	maxRead  *atomic.Int64
	wake     chan struct{} // buffered(1): limit was raised

	readc  chan readResult  // buffered(1)
	writec chan writeReq    // buffered(1); one request in flight
	wrotec chan writeResult // buffered(1)
}

func startLoops(t Transport, maxRead *atomic.Int64) *loops {
	l := &loops{
		t:       t,
		quit:    make(chan struct{}),
		maxRead: maxRead,
		wake:    make(chan struct{}, 1),
		readc:   make(chan readResult, 1),
		writec:  make(chan writeReq, 1),
		wrotec:  make(chan writeResult, 1),
	}
	l.wg.Go(l.readLoop)
	l.wg.Go(l.writeLoop)
	return l
}

// setLimit publishes how many bytes the input may still take and wakes the
// reader if that grew.
func (l *loops) setLimit(n int64) {
	if old := l.limit.Swap(n); n > old {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// delivered tells the reader that n bytes it read are now in the input,
// and wakes it: its credit grew if limit did not shrink by as much, as
// when the limit comes from the output's room rather than the input's.
func (l *loops) delivered(n int) {
	l.inflight.Add(-int64(n))
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loops) readLoop() {
	size := minReadChunk
	for {
		allowed := l.limit.Load() - l.inflight.Load()
		if allowed <= 0 {
			select {
			case <-l.wake:
				continue
			case <-l.quit:
				return
			}
		}
		want := min(allowed, l.maxRead.Load())
		c := newChunk(min(size, int(want)))
		buf := c.free()
		if int64(len(buf)) > want {
			buf = buf[:want]
		}
		n, err := l.t.Read(buf)
		if n > 0 {
			c.commit(n)
			l.inflight.Add(int64(n))
		}
		// Adapt the next chunk: grow while reads fill it, shrink back
		// when they come in small, so idle connections stay light.
		switch {
		case n == len(buf) && size < maxReadChunk:
			size = min(size*4, maxReadChunk)
		case n < len(buf)/8 && size > minReadChunk:
			size /= 4
		}
		select {
		case l.readc <- readResult{c: c, err: err}:
		case <-l.quit:
			c.release()
			return
		}
		if err != nil {
			return
		}
	}
}

func (l *loops) writeLoop() {
	for {
		select {
		case req := <-l.writec:
			var res writeResult
			if req.closeWrite {
				res.closeWrite = true
				if cw, ok := l.t.(closeWriter); ok {
					res.err = cw.CloseWrite()
				}
			} else {
				res.n, res.err = req.bufs.WriteTo(l.t)
			}
			l.wrotec <- res // never blocks: one request in flight
		case <-l.quit:
			return
		}
	}
}

// stop ends both loops and waits for them. With closeT the transport is
// closed; otherwise its loops are unblocked through past deadlines, which
// are cleared again afterwards, and a transport without deadlines is
// closed anyway. It returns the error of closing the transport.
func (l *loops) stop(closeT bool) error {
	close(l.quit)
	var err error
	d, hasDeadlines := l.t.(deadliner)
	if closeT || !hasDeadlines {
		err = l.t.Close()
	} else {
		past := time.Unix(1, 0)
		d.SetReadDeadline(past)
		d.SetWriteDeadline(past)
	}
	l.wg.Wait()
	select {
	case r := <-l.readc:
		if r.c != nil {
			r.c.release()
		}
	default:
	}
	if !closeT && hasDeadlines {
		d.SetReadDeadline(time.Time{})
		d.SetWriteDeadline(time.Time{})
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
