package actor

import (
	"bytes"
	"context"
	"fmt"
)

// Bits of Bufferevent.chans: which channel views have been asked for.
const (
	chanIn uint32 = 1 << iota
	chanEvents
)

// eventBuffer is the capacity of the Events channel: events that occur
// while the actor stops and find no room are dropped.
const eventBuffer = 16

// In returns the input as a channel of chunks, the Go view of the read
// callback: each chunk holds the bytes of one read (after the input
// stage), in order, and belongs to the receiver. The channel is closed
// after EOF or a read error once every byte before it was received (Err
// then says why), or when the bufferevent stops.
//
// The first call enables reading and switches input delivery to the
// channel: the Read callback is no longer called. Reading pauses while
// the read high watermark (DefaultChannelHighWatermark if none is set) of
// input waits undelivered, so a slow receiver pushes back on the peer.
func (b *Bufferevent) In() <-chan []byte {
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if b.in == nil {
		b.in = make(chan []byte)
		if b.exited {
			close(b.in)
			b.inClosed = true
		} else {
			b.chans.Or(chanIn)
			b.enabled.Or(uint32(Read))
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
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if b.events == nil {
		b.events = make(chan EventInfo, eventBuffer)
		if b.exited {
			close(b.events)
		} else {
			b.chans.Or(chanEvents)
			b.mail.notify()
		}
	}
	return b.events
}

// Out returns the output as a channel: a slice sent on it is appended to
// the output without copying, and belongs to the bufferevent from then on
// (do not touch it again). Sends block while the output holds the write
// high watermark (DefaultChannelHighWatermark if none is set). The
// channel is never closed: a bare send cannot see that the bufferevent
// stopped, so select on Done beside it, or use Send.
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
		}
		b.chMu.Unlock()
		b.outUsed.Store(true) // after out is set: the actor reads out once it sees this
		b.mail.notify()
	}
	return b.out
}

// Send copies p and hands it to the output through Out, blocking while the
// output is at its high watermark. It returns nil once the output has
// taken p, an error wrapping ErrClosed if the bufferevent stops first, or
// one wrapping ctx's cause if ctx ends first.
func (b *Bufferevent) Send(ctx context.Context, p []byte) error {
	if len(p) == 0 {
		return b.closedErr()
	}
	out := b.useOut()
	cp := bytes.Clone(p)
	select {
	case out <- cp:
		return nil
	case <-b.closing:
		return fmt.Errorf("send: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("send: %w", context.Cause(ctx))
	}
}
