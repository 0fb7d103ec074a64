package actor

import (
	"errors"
	"io"
)

// landRead is the one way bytes enter the actor, whatever the transport
// and whoever read them (the reader loop, whose loopEvent wait hands
// over, or the actor itself: waitInSocket, pullRead): src holds the n
// bytes a read brought, which move to readDst, and err is how the read
// ended (nil, EOF or a read error). The read credit, the read timeout and
// the read callback then follow; an end of stream met while reading is
// disabled waits for Enable. While a drain lingers, the bytes are dropped
// instead.
func (a *actorState) landRead(src *Buffer, n int, err error) {
	if a.linger.active() {
		a.discard(src, n, err)
		return
	}
	if n > 0 {
		a.readDst().moveAll(src)
		a.updateReadLimit()
		a.disarmTimeouts(Read)
		a.unseenInput = true
		if a.inStage == nil {
			a.readProgress()
		}
	}
	if err == nil {
		return
	}
	if !a.enabled(Read) {
		a.endWhileDisabled = err
		return
	}
	a.endRead(err)
}

// readDst is where reads land: rawIn with an input stage, else the input.
func (a *actorState) readDst() *Buffer {
	if a.inStage != nil {
		return &a.rawIn
	}
	return &a.input
}

// endRead reports the end of the read side: EOF or a read error.
//
// The kernel reports a reset once, to the first call that looks: when a
// write took it, the read after returns 0, which must not pass for the
// peer's EOF. The actor's own writes have reported theirs (writeReset);
// a borrower of the lent sink stored its failure (takeLentFailure); only
// a write with the writer loop is still out, and only then is the
// kernel asked whether the socket was reset (tcpClosed: a system call
// that a plain EOF, every connection's end, need not pay).
func (a *actorState) endRead(err error) {
	if errors.Is(err, io.EOF) {
		if !a.writeReset {
			if a.writing && tcpClosed(a.t) {
				a.eofHeld = true
				return
			}
			a.takeLentFailure() // may set writeReset
		}
		if a.writeReset {
			a.b.errMu.Lock()
			if a.b.wErr != nil {
				err = a.b.wErr // not an end of stream: the peer reset it
			}
			a.b.errMu.Unlock()
		}
	}
	if errors.Is(err, io.EOF) {
		a.readEnd = readEOF
		if a.inStage != nil {
			// Flush the input stage while reading is still enabled, so
			// that what it produces reaches the read callback before the
			// EOF event. The stage stays within the read high watermark,
			// so the EOF waits until the user has taken what it decodes
			// (runInput reports it then); a stage that fails at end of
			// stream reports its Error instead.
			a.eofPending = true
			a.runInput(Finished)
			return
		}
		a.b.enabled.And(^uint32(Read))
		a.emit(Reading|EOF, io.EOF)
		return
	}
	a.b.enabled.And(^uint32(Read))
	a.readEnd = readFailed
	a.emit(Reading|Error, err)
}

// onEnable is Enable on the actor (the bit is already stored): it disarms
// the timers of d, runs the read callback for input that came while
// reading was off, and reports an end of stream held meanwhile.
func (a *actorState) onEnable(d Dir) {
	a.disarmTimeouts(d)
	if d&Read != 0 && a.unseenInput {
		a.readProgress()
	}
	if err := a.endWhileDisabled; d&Read != 0 && err != nil && a.enabled(Read) && !a.stopping {
		a.endWhileDisabled = nil
		a.endRead(err)
	}
}

// readProgress runs the read callback if the input passed the low
// watermark while reading is enabled.
func (a *actorState) readProgress() {
	if !a.enabled(Read) || a.input.Len() == 0 {
		return
	}
	if low := a.b.rwm.Load().low; a.input.Len() >= low {
		a.unseenInput = false
		// Input delivered on the In channel has no read callback.
		if a.syncChannels(); !a.inChanUsed {
			a.fireCallback(Read, 0)
		}
	}
}

// closeInIfDone closes the In channel once the read side has ended and
// every byte before the end has been sent on it.
func (a *actorState) closeInIfDone() {
	if a.inC == nil || !a.readEnd.ended() || a.eofPending || a.input.Len() > 0 || a.rawIn.Len() > 0 {
		return
	}
	b := a.b
	b.chMu.Lock()
	if !b.inClosed {
		close(b.in)
		b.inClosed = true
	}
	b.chMu.Unlock()
	a.inC = nil
}

// dropClosedIn forgets an In channel that closeInIfDone closed at the end
// of the stream before, as a new transport starts another: the next call
// to In makes the new stream's channel and enables reading again, as the
// first call did (the end disabled it).
func (a *actorState) dropClosedIn() {
	if !a.inChanUsed || a.inC != nil {
		return
	}
	b := a.b
	b.chMu.Lock()
	b.in, b.inClosed = nil, false
	b.chans.And(^chanIn)
	b.chMu.Unlock()
	a.inChanUsed = false
}

// readHigh is the read high watermark in force: the one set, or
// DefaultChannelHighWatermark for a channel user who set none (0: none).
func (a *actorState) readHigh() int {
	high := a.b.rwm.Load().high
	if high == 0 && a.inChanUsed {
		high = DefaultChannelHighWatermark
	}
	return high
}

// updateReadLimit publishes the reader's credit: the room under the read
// high watermark while reading is enabled and the stream open, none
// otherwise, and no bound while a drain lingers.
func (a *actorState) updateReadLimit() {
	if a.io == nil {
		return
	}
	var limit int64
	if a.linger.reading() {
		limit = noLimit
	} else if a.enabled(Read) && !a.readEnd.ended() && !a.stopping {
		limit = noLimit
		if high := a.readHigh(); high > 0 {
			limit = int64(high - a.input.Len() - a.rawHeld())
		} else if a.inStage != nil && !a.inStarved {
			limit = int64(rawInMax - a.rawIn.Len())
		}
	}
	a.io.setLimit(limit)
}

// readSuspended reports whether the input has reached the read high
// watermark, so that reading waits (and the read timeout does not run).
func (a *actorState) readSuspended() bool {
	high := a.readHigh()
	return high > 0 && a.input.Len() >= high
}
