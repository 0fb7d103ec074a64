package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/bevgo/bev/actor"
)

// NewFilter returns a filtering bufferevent over underlying (libevent's
// bufferevent_filter_new): bytes the underlying reads pass through the
// input stage into the filter's input, and the filter's output passes
// through the output stage into the underlying's output. A nil stage
// passes bytes through unchanged. The filter belongs to the underlying's
// Base and, like every bufferevent, starts with writing enabled and
// reading disabled.
//
// The filter takes over the underlying's callbacks and its reading, and
// sets its write low watermark to its high mark so that the write
// callback (now the filter's) runs after every write; do not set them,
// nor read or write the underlying, while the filter lives.
// Its Underlying method returns underlying and its Conn method the
// underlying's (libevent's get_underlying and getfd). Filters stack: the
// underlying may itself be a filter.
//
// # Limits
//
// An output stage's limit is the room left under the underlying's write
// high watermark (no limit when it has none), counting what the filter has
// handed down and the underlying has not written yet; an input stage's is
// the room under the filter's read high watermark, in every flush mode.
// A filter never puts more than that in either, so backpressure runs
// through a stack end to end. The raw bytes that the input stage has not
// decoded yet count against the read high watermark too, so a filter
// reads from its underlying only as its stage consumes (unless the stage
// shows it can do nothing with what waits, as with a frame larger than
// the watermark): a decompression bomb stays bounded on both sides. When the underlying has no write high watermark, what the filter
// has handed down and the underlying has not written is still bounded,
// at twice actor.PairMaxIO; likewise, when it has no read high watermark,
// what it has read and the filter has not taken yet is bounded at twice
// actor.PairMaxIO (the underlying's reading pauses there).
//
// Bytes cross between the filter and the underlying as whole chunks,
// never copied (the filter's transport is an actor.BufferWriter and
// actor.BufferReader over the underlying's buffers), and, as on a pair,
// the filter's per-read and per-write maxima start at actor.PairMaxIO so
// that one hand-over carries many chunks; SetMaxRead and SetMaxWrite
// change them.
//
// # Events
//
// The underlying's EOF and errors reach the filter as its own Reading|EOF
// or Reading|Error (Writing|Error for write errors) after every byte read
// before them; on EOF the input stage is first flushed with Finished
// (libevent never does that; we do, so a decoder can report a truncated
// stream or emit its tail), within the read high watermark: the EOF event
// waits until the user has taken what the stage emits. The underlying's Connected and Timeout events
// are passed on to the filter's event callback with a nil cause; they do
// not appear on the filter's Events channel. A stage that fails, panics or
// returns an unknown result closes the filter with an Error event carrying
// the cause (libevent drops BEV_ERROR silently and calls the stage again
// later; we report it).
//
// # Timeouts
//
// The filter's own timeouts use the filter's state: the read timeout runs
// while it reads, and the write timeout while output waits in the filter
// or in the underlying (so a stalled peer is noticed however few bytes
// are stuck), restarted by progress anywhere down the chain. A filter
// with nothing pending gets no write timeout (libevent's #67 arms one
// anyway).
//
// # Flush and close
//
// Flush(Write, Finished) calls the output stage at least once even with
// nothing buffered, writes what it produced, and then flushes the
// underlying with Finished, so the far end reads EOF. Normal and Flush do
// not reach the underlying: flush each filter of a stack that needs it.
// Close is libevent's free: the filter's pending bytes are dropped and the
// underlying is closed with CloseOnFree, else left open with no callbacks,
// reading disabled and its write low watermark restored. Drain pushes
// every byte down the chain and through the underlying before closing it
// (libevent's #616). Stages that implement io.Closer are closed when the
// filter stops.
//
// NewFilter fails with an error wrapping ErrInvalid for a nil underlying,
// ErrClosed when it has stopped, and as actor.NewStaged does.
func NewFilter(underlying *actor.Bufferevent, in, out Stage, opts actor.Option) (*actor.Bufferevent, error) {
	if underlying == nil {
		return nil, fmt.Errorf("%w: nil underlying bufferevent", ErrInvalid)
	}
	if isDone(underlying.Done()) {
		return nil, fmt.Errorf("new filter: underlying: %w", ErrClosed)
	}
	c := newConn(underlying, closeFree, opts&actor.CloseOnFree != 0)
	t := &filterTransport{c: c, in: in, out: out}
	f, err := actor.NewStaged(underlying.Base(), t, opts, in, out)
	if err != nil {
		c.closeB = false
		t.Close()
		return nil, err
	}
	// As a pair's ends: the transport moves whole chunks, so let one
	// hand-off carry several of them.
	f.SetMaxRead(actor.PairMaxIO)
	f.SetMaxWrite(actor.PairMaxIO)
	c.upper.Store(f)
	c.setForward(func(ev actor.Event) { f.TriggerEvent(ev, 0) })
	return f, nil
}

// filterTransport is a filter's transport: the view of its underlying,
// with the methods the actor uses for filters. It has no deadlines on
// purpose, so that the actor closes it (detaching the view) whenever it
// drops it.
type filterTransport struct {
	c       *Conn
	in, out Stage
}

func (t *filterTransport) Read(p []byte) (int, error)  { return t.c.Read(p) }
func (t *filterTransport) Write(p []byte) (int, error) { return t.c.Write(p) }
func (t *filterTransport) CloseWrite() error           { return t.c.CloseWrite() }

// ReadBuffer and WriteBuffer move whole chunks between the filter and the
// underlying (actor.BufferReader, actor.BufferWriter).
func (t *filterTransport) ReadBuffer(dst *actor.Buffer, max int) (int, error) {
	return t.c.ReadBuffer(dst, max)
}

// TryReadBuffer and NotifyReadable let the filter's actor take what the
// view holds on its own goroutine, without a reader loop: the bytes the
// underlying's read callback hands the view reach the filter without a
// hop through another goroutine.
func (t *filterTransport) TryReadBuffer(dst *actor.Buffer, max int) (int, error) {
	return t.c.tryReadBuffer(dst, max)
}

func (t *filterTransport) NotifyReadable(wake func()) { t.c.notifyReadable(wake) }

func (t *filterTransport) WriteBuffer(src *actor.Buffer, wait bool) (int64, error) {
	return t.c.WriteBuffer(src, wait)
}

// Close detaches the view (closing the underlying with CloseOnFree) and
// closes the stages that own resources.
func (t *filterTransport) Close() error {
	err := t.c.Close()
	return errors.Join(err, closeStage(t.in), closeStage(t.out))
}

func (t *filterTransport) Underlying() *actor.Bufferevent { return t.c.b }

// WriteLimit is the room under the underlying's write high watermark, or
// -1 when it has none.
func (t *filterTransport) WriteLimit() int {
	if _, high, _ := t.c.b.Watermark(actor.Write); high > 0 {
		t.c.mu.Lock()
		defer t.c.mu.Unlock()
		if t.c.writeErrorLocked() != nil {
			// Writes fail at once: no limit, so that the filter's
			// output stage runs and its next write learns the error
			// (onEvent wakes it), rather than waiting for room.
			return -1
		}
		return max(0, high-t.c.heldLocked())
	}
	return -1
}

func (t *filterTransport) Buffered() int { return t.c.buffered() }

func (t *filterTransport) NotifyProgress(wake func()) { t.c.notifyProgress(wake) }

// Drain hands what the view holds to the underlying and drains it in turn.
func (t *filterTransport) Drain(ctx context.Context) error { return t.c.drain(ctx) }
