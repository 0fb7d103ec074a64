package actor

import (
	"fmt"
	"io"
)

// errUnknownResult is the cause when a stage returns a result that is not
// StageOK, StageNeedMore or StageError.
var errUnknownResult = fmt.Errorf("%w: stage returned an unknown result", ErrInvalid)

// outStageBudget bounds what the output stage may queue for the writer
// loop, in per-write maximums, when the transport sets no limit of its own.
const outStageBudget = 4

// rawInMax bounds what an input stage leaves untaken when the read high
// watermark does not (there is none): reading pauses while that much
// waits for a stage that holds back, as a delay does.
const rawInMax = 2 * PairMaxIO

// runInput moves bytes from rawIn through the input stage into the input,
// never past the read high watermark, in any mode: a stage may expand its
// input without bound (a decompressor), so a flush must not be what lets
// it. In Normal mode it runs while reading is enabled and the input is
// below its high watermark (so input left waiting in rawIn is picked up as
// soon as the user drains: libevent's #362 and PR #613 both hold). Flush
// and Finished call the stage at least once, even with no room, and stay
// pending: later rounds (as the user drains) call the stage in that mode
// until it has emitted everything it holds and rawIn is empty. An EOF
// that ended the transport's reading is reported only then (endRead), so
// every decoded byte reaches the user before it and none waits unbounded.
func (a *actorState) runInput(mode FlushMode) {
	if a.inStage == nil || a.stopping {
		return
	}
	force := mode != Normal
	a.inPending = max(a.inPending, mode)
	// A read callback that runs inline (no DeferCallbacks) may drain an
	// input that the stage had filled to its high watermark. Nothing else
	// would wake the actor for the raw bytes still waiting (the reader may
	// have nothing more to deliver, and a peer waiting for our reply never
	// sends), so go round again while that is what stopped the stage. The
	// bound keeps a stage that expands without end (a decompression bomb)
	// under a callback that keeps draining from holding the actor here,
	// deaf to Close: past it, the actor comes back after its mail.
	for range 16 {
		full, done := a.runInputOnce(a.inPending, force)
		force = false
		if done {
			a.inFinished()
			return
		}
		if !full || a.stopping || !a.enabled(Read) || a.readSuspended() {
			return
		}
	}
	a.b.mail.wake()
}

// inFinished ends a pending Flush or Finished of the input stage: it has
// emitted everything. The EOF that started a Finished is reported now,
// after every byte decoded before it.
func (a *actorState) inFinished() {
	a.inPending = Normal
	if !a.eofPending {
		return
	}
	a.eofPending = false
	a.b.enabled.And(^uint32(Read))
	a.emit(Reading|EOF, io.EOF)
}

// runInputOnce is one round of runInput: it calls the stage in mode while
// it may (at least once when force) and reports whether it stopped
// because the input was full while raw bytes still waited, and, for a
// pending Flush or Finished, whether the stage has now emitted all it had
// (a call with room left rawIn empty and the stage holding nothing).
func (a *actorState) runInputOnce(mode FlushMode, force bool) (full, done bool) {
	produced := false
	for called := false; ; called = true {
		limit := -1
		if high := a.readHigh(); high > 0 {
			limit = max(0, high-a.input.Len())
		}
		// A pending Flush or Finished calls the stage until it is done
		// (runInput), even with nothing waiting: it may hold state that
		// only that call emits, or a truncation only that call detects.
		waiting := a.rawIn.Len() > 0 || a.stageBuffered(a.inStage) > 0
		canRun := (waiting || mode != Normal) && limit != 0 && (force || a.enabled(Read))
		if !canRun && (called || !force) {
			full = waiting && limit == 0
			break
		}
		inBefore, rawBefore := a.input.Len(), a.rawIn.Len()
		a.input.setFrozen(false, false)
		res, err := a.callStage(a.inStage, &a.input, &a.rawIn, limit, mode)
		a.input.setFrozen(false, true)
		if !a.stageResult(Reading, res, err) {
			return false, false
		}
		progress := a.input.Len() != inBefore || a.rawIn.Len() != rawBefore
		if a.input.Len() != inBefore {
			produced = true
		}
		// A stage that can do nothing with what waits, with room to put
		// its output, needs more raw bytes first (a frame or a TLS record
		// larger than the watermark): rawHeld lets them in.
		a.inStarved = !progress && limit != 0 && a.rawIn.Len() > 0 && a.stageBuffered(a.inStage) == 0
		// A call with room that left nothing waiting, or that could do
		// nothing more with what waits, ends a pending Flush or Finished.
		// A stage that says it still holds bytes (a delay releases them
		// later, on its own wake-up) is not done, progress or not.
		if mode != Normal && limit != 0 && a.stageBuffered(a.inStage) == 0 && (!progress || a.rawIn.Len() == 0) {
			done = true
			break
		}
		if res != StageOK || !progress {
			break
		}
	}
	if produced {
		a.disarmTimeouts(Read)
		a.unseenInput = true
		a.readProgress()
	}
	return full && produced, done
}

// rawHeld is what the input stage has waiting undecoded that counts
// against the read high watermark (updateReadLimit): all of rawIn, unless
// the stage showed that it cannot go on without more (inStarved).
func (a *actorState) rawHeld() int {
	if a.inStage == nil || a.inStarved {
		return 0
	}
	return a.rawIn.Len()
}

// runOutput moves bytes from the output through the output stage into
// rawOut, which the writer loop sends. In Normal mode it runs while writing
// is enabled and rawOut has room; Flush and Finished call the stage at
// least once even with nothing buffered (a compressor must emit its tail).
func (a *actorState) runOutput(mode FlushMode) {
	if a.outStage == nil || a.stopping {
		return
	}
	// As libevent's be_filter_process_output: after a round that drained
	// the output to the write low watermark, run the write callback. This
	// is where a staged bufferevent's write callback comes from (onWrote
	// leaves it alone): a stage that absorbs its input, as a compressor
	// does, may give the writer nothing to write and so no other reason to
	// call it. What the callback appends is processed at once; the bound
	// keeps a callback that always refills from holding the actor here
	// (the writer's next completion brings it back).
	for range 16 {
		before := a.output.Len()
		a.runOutputOnce(mode)
		after := a.output.Len()
		if a.stopping || after >= before || !a.enabled(Write) {
			return
		}
		if _, low := a.writeMarks(); after > low {
			return
		}
		a.fireCallback(Write, 0)
		if a.output.Len() == after {
			return // nothing appended, or the callback is deferred
		}
		mode = Normal
	}
	// The bound cut a callback that keeps refilling: what it appended last
	// waits for the stage. A write completing would bring the actor back,
	// but a transport that took the last write at once (a filter's view,
	// a socket's direct write) sends no completion, so give the actor
	// another turn, after its mail.
	a.b.mail.wake()
}

// runOutputOnce calls the output stage in mode while it makes progress
// and the raw output has room (in Normal mode), and at least once in
// Flush and Finished.
func (a *actorState) runOutputOnce(mode FlushMode) {
	for called := false; ; called = true {
		room := a.outRoomRaw() // negative: the transport sets no limit
		waiting := a.output.Len() > 0 || a.stageBuffered(a.outStage) > 0
		canRun := waiting && (mode != Normal || (a.enabled(Write) && room != 0))
		if !canRun && (called || mode == Normal) {
			break
		}
		limit := -1
		if mode == Normal {
			limit = room
		}
		outBefore, rawBefore := a.output.Len(), a.rawOut.Len()
		res, err := a.callStage(a.outStage, &a.rawOut, &a.output, limit, mode)
		if !a.stageResult(Writing, res, err) {
			return
		}
		if a.rawOut.Len() != rawBefore {
			a.disarmTimeouts(Write)
		}
		if res != StageOK || (a.output.Len() == outBefore && a.rawOut.Len() == rawBefore) {
			break
		}
	}
}

// A Passer is an output Stage that may, for a while, pass what it is given
// on unchanged and hold nothing, as a toxic stage with no toxic does
// (package pipeline/toxic). While Passes reports true, a socket's actor
// may lend its sink to writers on other goroutines as if it had no output
// stage (see Bufferevent.Write), and their bytes skip the stage, which
// would have passed them on as they were. Passes is called from any
// goroutine; once it reports false, bytes go through the stage again from
// the next write, as they would after a change that came with a chunk
// already under way.
type Passer interface {
	Passes() bool
}

// stagePasses reports whether st is no stage, or a Passer passing now. It
// is called on any goroutine: a Passes that panics counts as not passing,
// so that the bytes go to the actor, whose own call (actorState.passes)
// fails the bufferevent with the panic.
func stagePasses(st Stage) (passes bool) {
	if st == nil {
		return true
	}
	p, ok := st.(Passer)
	if !ok {
		return false
	}
	defer func() {
		if recover() != nil {
			passes = false
		}
	}()
	return p.Passes()
}

// passes is stagePasses on the actor: a Passes that panics fails the
// bufferevent with a *PanicError, as a panic in Process does, and counts
// as not passing.
func (a *actorState) passes(st Stage) (passes bool) {
	if p, ok := st.(Passer); ok {
		defer a.recoverPanic(false)
		return p.Passes()
	}
	return st == nil
}

// stageBuffered returns how many bytes st holds ready to emit without more
// input, when it says so through an optional Buffered method (see Stage).
// A Buffered that panics fails the bufferevent with a *PanicError, as a
// panic in Process does, and counts as holding nothing.
func (a *actorState) stageBuffered(st Stage) (n int) {
	if b, ok := st.(interface{ Buffered() int }); ok {
		defer a.recoverPanic(false)
		return b.Buffered()
	}
	return 0
}

// outRoomRaw is how much more the output stage may queue: what the
// transport says it can take when it says (a filter's underlying write
// high watermark; -1 when that has none), else a few per-write maximums.
func (a *actorState) outRoomRaw() int {
	if wl, ok := a.t.(interface{ WriteLimit() int }); ok {
		if n := wl.WriteLimit(); n >= 0 {
			return max(0, n-a.rawOut.Len())
		}
		return -1
	}
	return max(0, outStageBudget*int(a.b.maxWrite.Load())-a.rawOut.Len())
}

// stageResult reports whether processing may go on; a failed stage closes
// the bufferevent with an Error event carrying the cause.
func (a *actorState) stageResult(dir Event, res StageResult, err error) bool {
	switch res {
	case StageOK, StageNeedMore:
		return true
	case StageError:
		if err == nil {
			err = fmt.Errorf("actor: stage failed")
		}
		a.fail(dir|Error, err, false)
	default:
		a.fail(dir|Error, fmt.Errorf("%w (%d)", errUnknownResult, res), false)
	}
	return false
}

// flush is Flush on the actor: the stages of d run in mode, and Finished
// on Write asks for the half-close once the output is written.
func (a *actorState) flush(d Dir, mode FlushMode) {
	if d&Read != 0 {
		a.runInput(mode)
	}
	if d&Write != 0 {
		a.runOutput(mode)
		if mode == Finished {
			a.closeWrite.ask()
		}
	}
}
