package actor

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/bevgo/bev/limiter"
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

// wrote takes a finished write, the writer loop's or a direct one: it
// drains what was written from the output (or puts back what a
// BufferWriter left), disarms the write timeout on progress, reports a
// write error (failing later writes), and runs the write callback when
// the output drained to the low watermark. A finished half-close only
// marks it done.
func (a *actorState) wrote(w loopEvent) {
	a.writing = false
	if w.closeWrite {
		a.closeWrite.finish()
		if w.err != nil && !errors.Is(w.err, net.ErrClosed) {
			a.writeErr = true
			a.emit(Writing|Error, w.err)
		}
		return
	}
	src := &a.output
	if a.outStage != nil {
		src = &a.rawOut
	}
	if a.handedLen > 0 {
		a.handedLen = 0 // handed over as chunks: nothing left to drain
		if a.handed.n > 0 && w.err == nil {
			// A partialWriter took part: the rest is output again,
			// where the write low watermark and the user see it.
			src.prependAll(&a.handed)
		}
	} else {
		src.drain(int(w.n))
	}
	if w.n > 0 {
		a.disarmTimeouts(Write)
	}
	if w.err != nil {
		a.writeErr = true
		a.writeReset = errors.Is(w.err, syscall.ECONNRESET)
		// Publish what is left before Send and Write can see the failure:
		// a caller must not read an OutputLen from before it.
		a.publishOut()
		a.b.failOutput(w.err)
		a.b.enabled.And(^uint32(Write))
		a.emit(Writing|Error, w.err)
		return
	}
	// With an output stage the write callback comes from runOutput, when
	// the stage drains the output.
	if w.n > 0 && a.enabled(Write) && a.outStage == nil {
		if _, low := a.writeMarks(); a.output.Len() <= low {
			a.fireCallback(Write)
		}
	}
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
	return a.output.Len()+a.handedLen < high && !a.stopping
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
// stage produced, and what was handed to a BufferWriter and not taken.
func (a *actorState) pendingOut() int { return a.output.Len() + a.rawOut.Len() + a.handedLen }

// maxDirectWrites bounds the direct writes of one pumpWrite, so that a
// write callback that refills the output each time it drains cannot keep
// the actor from its mailbox: after that many, the rest goes to the writer
// loop, whose result comes back through the actor's select.
const maxDirectWrites = 16

// pumpWrite starts writing the output when nothing is in flight. On a
// socket with a side door (sysConn) it first writes directly what the
// kernel takes at once, and hands only the rest to the writer loop; the
// result of a direct write goes through onWrote exactly as the writer
// loop's would.
func (a *actorState) pumpWrite() {
	direct := 0 // direct writes made; the side door is closed at maxDirectWrites
	if a.io == nil || (a.io.sys == nil && a.bw == nil) {
		direct = maxDirectWrites
	}
	for {
		if a.writing || a.io == nil || a.writeErr || a.stopping {
			return
		}
		src := &a.output
		if a.outStage != nil {
			src = &a.rawOut
		}
		if src.Len() == 0 {
			// An output stage that still holds bytes (a delay) sends
			// them before the half-close.
			if a.closeWrite.due() && a.output.Len() == 0 && stageBuffered(a.outStage) == 0 {
				a.closeWrite.send()
				a.writing = true
				a.io.write(writeReq{closeWrite: true})
			}
			return
		}
		if !a.enabled(Write) {
			return
		}
		if a.bw != nil {
			switch a.handOver(src, direct < maxDirectWrites && !a.b.rate.Load().limited()) {
			case handedToLoop:
				return
			case handedDirect:
				// onWrote may run the write callback: look again.
				direct++
				continue
			}
		}
		a.batch = a.writeBatch(src)
		if a.io.sys != nil && direct < maxDirectWrites && !a.b.rate.Load().limited() {
			direct++
			n, err := a.io.sys.tryWrite(a.batch)
			if n < int64(bufsLen(a.batch)) && err == nil {
				direct = maxDirectWrites // the kernel is full: the writer loop waits for room
			}
			if n > 0 || err != nil {
				// onWrote may run the write callback, which may change
				// anything: look again from the top.
				a.onWrote(loopEvent{wrote: true, n: n, err: err})
				continue
			}
		}
		a.wbufs = a.batch
		a.writing = true
		a.io.write(writeReq{bufs: &a.wbufs})
		return
	}
}

// writeBatch is the one place that decides what a byte write hands the
// transport: views of everything queued at the front of src, up to the
// per-write maximum (DefaultMaxWrite unless SetMaxWrite lowered it) and
// maxWriteSlices views, so a socket gets it in one writev. (A write to a
// BufferWriter moves chunks instead, within the same maximum: handOver.)
// The writer loop cuts it further to the rate allowance, once it has
// waited for one.
func (a *actorState) writeBatch(src *Buffer) [][]byte {
	batch := src.slices(a.batch[:0], int(a.b.maxWrite.Load()))
	if len(batch) > maxWriteSlices {
		// More would not fit the socket's one writev (sysConn.tryWrite),
		// and what it left out would look like a full kernel buffer.
		clear(batch[maxWriteSlices:])
		batch = batch[:maxWriteSlices]
	}
	return batch
}

// bufsLen returns the bytes in bufs.
func bufsLen(bufs [][]byte) int {
	n := 0
	for _, p := range bufs {
		n += len(p)
	}
	return n
}

// What handOver did.
const (
	handedNothing = iota // the first chunk does not fit: write bytes instead
	handedDirect         // the transport took it all at once, or failed
	handedToLoop         // the writer loop has (the rest of) it
)

// handOver gives a BufferWriter whole chunks from the front of src, up to
// the per-write maximum and the rate allowance. With direct it first
// offers them without waiting, on the actor's goroutine; what the
// transport does not take at once goes to the writer loop, which waits.
// It hands nothing when not even the first chunk fits the per-write
// maximum or the allowance: the byte path then waits for the rate and
// cuts the write to size, so a small SetMaxWrite still makes small writes
// (and each one is progress the write timeout sees).
func (a *actorState) handOver(src *Buffer, direct bool) int {
	limit := int(a.b.maxWrite.Load())
	if rs := a.b.rate.Load(); rs.limited() {
		limit = int(min(int64(limit), rs.allow(limiter.Write)))
	}
	if src.chunks[src.head].len() > limit {
		return handedNothing
	}
	if a.handed.n == 0 && src.n <= limit {
		// All of it fits, as it does whenever the output is drained
		// between writes: one move, not one per chunk.
		a.handed.moveAll(src)
	}
	for src.Len() > 0 {
		c := src.chunks[src.head]
		if a.handed.n > 0 && a.handed.n+c.len() > limit {
			break
		}
		a.handed.push(src.popFront())
	}
	if direct {
		before := a.handed.n
		n, err := a.bw.WriteBuffer(&a.handed, false)
		n, err = checkWriteBuffer(before, n, &a.handed, err, false)
		if a.handed.n == 0 || err != nil {
			a.handed.dropAll()
			a.handedLen = int(n) // taken: onWrote has nothing to drain
			a.onWrote(loopEvent{wrote: true, n: n, err: err})
			return handedDirect
		}
		if n > 0 {
			a.disarmTimeouts(Write)
		}
	}
	a.handedLen = a.handed.n
	a.writing = true
	a.io.write(writeReq{buf: &a.handed})
	return handedToLoop
}
