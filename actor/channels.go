package actor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Bits of Bufferevent.chans: which channel views have been asked for.
const (
	chanIn uint32 = 1 << iota
	chanEvents
)

// closedIn and closedEvents are what In and Events return for a
// bufferevent not made by a constructor: closed, so a range over them ends.
var (
	closedIn     = func() chan []byte { c := make(chan []byte); close(c); return c }()
	closedEvents = func() chan EventInfo { c := make(chan EventInfo); close(c); return c }()
)

// eventBuffer is the capacity of the Events channel: events that occur
// while the actor stops and find no room are dropped.
const eventBuffer = 16

// In returns the input as a channel of chunks, the Go view of the read
// callback: each chunk holds the bytes of one read (after the input
// stage), in order, and belongs to the receiver. The channel is closed
// after EOF or a read error once every byte before it was received (Err
// then says why), or when the bufferevent stops. A socket that connects
// again after its stream ended starts over: In then returns a new channel
// for the new stream, and its first call enables reading again.
//
// The first call enables reading and switches input delivery to the
// channel: the Read callback is no longer called. Reading pauses while
// the read high watermark (DefaultChannelHighWatermark if none is set) of
// input waits undelivered, so a slow receiver pushes back on the peer.
func (b *Bufferevent) In() <-chan []byte {
	if b.zero() {
		return closedIn
	}
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if b.in == nil {
		b.in = make(chan []byte)
		if b.exited {
			close(b.in)
			b.inClosed = true
		} else {
			b.chans.Or(chanIn)
			b.enable(Read)
			b.mail.post(message{kind: msgEnable, dir: Read})
		}
	}
	return b.in
}

// Events returns a channel of the events that occur from the first call
// on, in order, alongside the event callback. It is closed when the
// bufferevent stops; a receiver should keep up, since events that find
// the channel full while the actor stops are dropped.
func (b *Bufferevent) Events() <-chan EventInfo {
	if b.zero() {
		return closedEvents
	}
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if b.events == nil {
		b.events = make(chan EventInfo, eventBuffer)
		if b.exited {
			close(b.events)
		} else {
			b.chans.Or(chanEvents)
			b.mail.wake()
		}
	}
	return b.events
}

// Out returns the output as a channel: a slice sent on it is appended to
// the output without copying, and belongs to the bufferevent from then on
// (do not touch it again). Sends block while the output holds the write
// high watermark (DefaultChannelHighWatermark if none is set). The
// channel is never closed, and once the output has failed nothing
// receives from it: a bare send cannot see that, so select on Failed
// beside it (Write(nil) then returns the cause), or use Send. A slice
// sent here counts in OutputLen once the actor has taken it in (Send's
// count from before it returns). A bare send may overtake the bytes of a
// Write made just before it on the same goroutine; Send may not.
func (b *Bufferevent) Out() chan<- []byte {
	return b.useOut()
}

// useOut makes the Out channel the first time and tells the actor to
// select on it; most bufferevents never use it, so it is not made before.
func (b *Bufferevent) useOut() chan []byte {
	if !b.outUsed.Load() {
		b.chMu.Lock()
		if b.out == nil {
			b.out = make(chan []byte)
			b.send = make(chan sendPiece)
		}
		b.chMu.Unlock()
		b.outUsed.Store(true) // after out and send are set: the actor reads them once it sees this
		b.mail.wake()
	}
	return b.out
}

// Send copies p and hands it to the output as a send on Out does,
// blocking while the output is at its high watermark, and counts it in
// OutputLen before it returns; a p larger than the watermark goes in
// pieces of at most the watermark, each waiting for room, so the output
// stays bounded. Its bytes go after those of every Write and WriteBuffer
// that returned before it was called. It returns nil once the output has
// taken all of p. It returns promptly with an error wrapping the cause
// when the output fails first (a write to the transport failed: errors.Is
// finds syscall.ECONNRESET or syscall.EPIPE, say; see Failed), ErrClosed
// if the bufferevent stops first, or ctx's cause if ctx ends first; the
// pieces handed over before then stay in the output.
func (b *Bufferevent) Send(ctx context.Context, p []byte) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	b.useOut()
	send := b.send // set with out, before outUsed
	failed := b.Failed()
	for first := true; first || len(p) > 0; first = false {
		if err := b.writeErr(); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		if len(p) == 0 {
			return nil
		}
		_, high, _ := b.Watermark(Write)
		if high == 0 {
			high = DefaultChannelHighWatermark
		}
		n := min(len(p), high)
		cp := bytes.Clone(p[:n])
		// Count the piece in OutputLen before handing it over, so that it
		// is counted when Send returns; the actor takes the count over
		// with the piece (see publishOut), and a piece it never took is
		// taken back out.
		after, queued, ok := b.mail.reserveOut(n, &b.outLen)
		if !ok {
			return fmt.Errorf("send: %w", b.stopCause())
		}
		// Posts still queued (this goroutine's Writes, say) go first, and
		// the room the piece waits for is what they leave. An actor that
		// began waiting before they came offers room from before them: an
		// empty piece first makes it take them, and the piece then goes to
		// a wait that counts them.
		var err error
		if queued {
			err = b.handOver(ctx, send, failed, sendPiece{nil, after})
		}
		if err == nil {
			err = b.handOver(ctx, send, failed, sendPiece{cp, after})
		}
		if err == nil {
			p = p[n:]
			continue
		}
		b.mail.unreserveOut(n, &b.outLen)
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

// handOver hands sp to the actor on send, or returns why it could not:
// the output failed (its cause), the bufferevent stopped (ErrClosed), or
// ctx ended (its cause).
func (b *Bufferevent) handOver(ctx context.Context, send chan<- sendPiece, failed <-chan struct{}, sp sendPiece) error {
	select {
	case send <- sp:
		return nil
	case <-failed:
		return b.stopCause()
	case <-b.closing:
		// The output may have failed first, and the close come after
		// (an event callback or a Drain closing on the failure): the
		// select picks either, and the failure is the cause.
		return b.stopCause()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// stopCause is why the output takes no more: the error of the write that
// failed it, or ErrClosed when it failed because the bufferevent stopped
// (or is stopping).
func (b *Bufferevent) stopCause() error {
	if err := b.writeErr(); err != nil && !errors.Is(err, errStopped) {
		return err
	}
	return ErrClosed
}

// sendPiece is a piece of a Send on its way to the actor: the bytes, and
// the place among the mailbox's posts the piece was handed over at
// (mailbox.reserveOut), so that what was posted before it, a Write say,
// goes to the output first. An empty piece only makes the actor take
// those posts.
type sendPiece struct {
	p     []byte
	after uint64
}

// Failed returns a channel that is closed once the output can take
// nothing more: a write to the transport failed (a reset, a broken pipe,
// a failed underlying bufferevent), or the bufferevent stopped. From then
// on Write, WriteBuffer and Send fail at once with the cause, and nothing
// receives from Out; select on Failed beside a send on Out. A read error
// alone does not close it: the output fails when its own next write does.
// A new transport (Connect, SetTransport, ReplaceTransport: a reconnect)
// after a failure starts with a working output, and Failed then returns a
// new, open channel (one that was never closed stays the same); the
// failure left writing disabled, as libevent's does, until Enable(Write).
func (b *Bufferevent) Failed() <-chan struct{} {
	if b.zero() {
		return closedChan
	}
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if b.failC == nil {
		b.failC = make(chan struct{})
		if b.failed {
			close(b.failC)
		}
	}
	return b.failC
}

// clearOutputFailure forgets a failed write of the transport before, when
// a new one is attached (actorState.attach): Write, WriteBuffer and Send
// work again, and Failed returns a new channel, open until the new
// transport fails in turn. A bufferevent that has stopped gets no new
// transport, so its failure stays.
func (b *Bufferevent) clearOutputFailure() {
	b.errMu.Lock()
	b.wErr = nil
	b.errMu.Unlock()
	b.chMu.Lock()
	b.failed, b.failC = false, nil
	b.chMu.Unlock()
}

// failOutput records that the output can take nothing more, and why, and
// closes the Failed channel. The first cause wins.
func (b *Bufferevent) failOutput(err error) {
	b.errMu.Lock()
	if b.wErr == nil {
		b.wErr = err
	}
	b.errMu.Unlock()
	b.chMu.Lock()
	if !b.failed {
		b.failed = true
		if b.failC != nil {
			close(b.failC)
		}
	}
	b.chMu.Unlock()
}
