package actor

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// onWrote takes in a write's result (wrote), then reports an EOF held for
// it (see eofHeld), as an error if the write met the reset.
func (a *actorState) onWrote(w loopEvent) {
	a.wrote(w)
	if a.eofHeld && !a.writing {
		a.eofHeld = false
		a.endRead(io.EOF)
	}
}

// wrote takes a finished write, the writer loop's or a direct one: the
// sink drains what was written from the output and puts back what it
// took and did not write, then wrote disarms the write timeout on progress, reports a
// write error (failing later writes), and runs the write callback when
// the output drained to the low watermark. A finished half-close only
// marks it done.
func (a *actorState) wrote(w loopEvent) {
	a.writing = false
	if w.closeWrite {
		if w.err != nil && !errors.Is(w.err, net.ErrClosed) {
			// The half-close failed (a reset came first): the output
			// fails as on a failed write, and the half-close stays
			// undone, so that a Drain waiting for it reports the loss.
			a.writeFailed(w.err)
			return
		}
		a.closeWrite.finish()
		return
	}
	a.io.out.done(a.writeSrc(), w.n)
	a.taken = 0
	if w.n > 0 {
		a.disarmTimeouts(Write)
	}
	if w.err != nil {
		a.writeFailed(w.err)
		return
	}
	// With an output stage the write callback comes from runOutput, when
	// the stage drains the output.
	if w.n > 0 && a.enabled(Write) && a.outStage == nil {
		if _, low := a.writeMarks(); a.output.Len() <= low {
			a.fireCallback(Write, 0)
		}
	}
}

// writeFailed takes in a failed write, the actor's own or a borrower's of
// its lent sink (msgWriteFailed): the output takes no more, Send and Write
// fail with err, writing is disabled and a Writing|Error event reports it.
// A reset is remembered (writeReset): the kernel reports it to one call
// only, and the read that follows looks like an end of stream.
func (a *actorState) writeFailed(err error) {
	if a.writeErr {
		return // reported already
	}
	a.writeErr = true
	a.writeReset = errors.Is(err, syscall.ECONNRESET)
	// Publish what is left before Send and Write can see the failure:
	// a caller must not read an OutputLen from before it.
	a.publishOut()
	a.b.failOutput(err)
	a.b.enabled.And(^uint32(Write))
	a.emit(Writing|Error, err)
}

// writeMarks returns the write high and low watermarks.
func (a *actorState) writeMarks() (high, low int) {
	wm := a.b.wwm.Load()
	return wm.high, wm.low
}

// outRoom reports whether the Out channel may hand over more output:
// whether the output, with what was handed to the transport as chunks and
// not yet taken (as a socket's output still holds what is being written),
// is below the write high watermark.
func (a *actorState) outRoom() bool {
	high, _ := a.writeMarks()
	if high == 0 {
		high = DefaultChannelHighWatermark
	}
	return a.output.Len()+a.taken < high && !a.stopping
}

// publishOut brings b.outLen in line with the pending output. Senders on
// other goroutines add what they post to b.outLen before their call
// returns (Write, WriteBuffer, Send), so b.outLen is the actor's account
// (counted) plus what senders posted and the actor has not taken yet;
// once it takes those bytes they move to its account. Storing pendingOut
// instead would lose a sender's add made between the computation and the
// store; adding the difference from the account counts each byte once,
// whether it waits in the mailbox or in the output.
func (a *actorState) publishOut() {
	p := a.pendingOut()
	if d := p - a.counted; d != 0 {
		a.b.outLen.Add(int64(d))
	}
	a.counted = p
}

// pendingOut is the output not yet written: the output, what the output
// stage produced, and what the sink took out of them for a write that is
// still out.
func (a *actorState) pendingOut() int { return a.output.Len() + a.rawOut.Len() + a.taken }

// writeSrc is where writes come from: rawOut with an output stage, else
// the output.
func (a *actorState) writeSrc() *Buffer {
	if a.outStage != nil {
		return &a.rawOut
	}
	return &a.output
}

// maxDirectWrites bounds the direct writes of one pumpWrite, so that a
// write callback that refills the output each time it drains cannot keep
// the actor from its mailbox: after that many, the rest goes to the writer
// loop, whose result comes back through the actor's select.
const maxDirectWrites = 16

// pumpWrite is the one way bytes leave the actor: when no write is out,
// it takes the next batch from the front of the output (the sink's take:
// at most the per-write maximum, DefaultMaxWrite unless SetMaxWrite
// lowered it), offers it to the transport without waiting (a socket's
// direct writev, a filter's view taking chunks), and hands what was not
// taken to the writer loop, which waits (and waits for the rate limit
// first: no direct write is made under one). Every result, direct or the
// loop's, goes through onWrote. With the output written and a half-close
// asked for, it sends the half-close.
func (a *actorState) pumpWrite() {
	direct := 0 // direct writes made; no more after maxDirectWrites
	for {
		if a.writing || a.io == nil || a.writeErr || a.stopping || !a.sinkHeldHere() {
			return // a write is out, or the sink is lent (see lend.go)
		}
		src := a.writeSrc()
		if src.Len() == 0 {
			// An output stage that still holds bytes (a delay) sends
			// them before the half-close.
			if a.closeWrite.due() && a.output.Len() == 0 && a.stageBuffered(a.outStage) == 0 {
				a.closeWrite.send()
				a.writing = true
				if cw, ok := a.t.(closeWriter); ok && a.io.sys != nil {
					// A plain socket's shutdown never waits: no
					// writer loop for it (a TLS conn's sends
					// close_notify, which may).
					a.onWrote(loopEvent{wrote: true, closeWrite: true, err: cw.CloseWrite()})
					return
				}
				a.io.write(writeReq{closeWrite: true})
			}
			return
		}
		if !a.enabled(Write) {
			return
		}
		out := a.io.out
		n, moved := out.take(src, int(a.b.maxWrite.Load()))
		a.taken = moved
		if direct < maxDirectWrites && !a.b.rate.Load().limited() {
			direct++
			w, err := out.write(noLimit, false)
			// The transport is full: the actor waits for room itself
			// (waitForRoom), or else the writer loop does.
			full := w < int64(n) && err == nil
			room := full && a.waitsForRoom()
			if full && !room {
				direct = maxDirectWrites
			}
			switch {
			case w > 0 || err != nil:
				// onWrote may run the write callback, which may change
				// anything: look again from the top, or, waiting for
				// room, before the wait (waitForRoom).
				a.onWrote(loopEvent{wrote: true, n: w, err: err})
			case room:
				out.done(src, 0) // puts back what it took
				a.taken = 0
			}
			if room {
				a.io.full = true
				return
			}
			if w > 0 || err != nil {
				continue
			}
		}
		a.writing = true
		a.io.write(writeReq{})
		return
	}
}
