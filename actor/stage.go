package actor

import "fmt"

// errUnknownResult is the cause when a stage returns a result that is not
// StageOK, StageNeedMore or StageError.
var errUnknownResult = fmt.Errorf("%w: stage returned an unknown result", ErrInvalid)

// outStageBudget bounds what the output stage may queue for the writer
// loop, in per-write maximums, when the transport sets no limit of its own.
const outStageBudget = 4

// rawInMax bounds what an input stage may leave untaken: reading pauses
// while that much waits for the stage.
const rawInMax = 2 * PairMaxIO

// runInput moves bytes from rawIn through the input stage into the input.
// In Normal mode it runs while reading is enabled and the input is below
// its high watermark (so input left waiting in rawIn is picked up as soon
// as the user drains: libevent's #362 and PR #613 both hold); Flush and
// Finished call the stage at least once, with no limit.
func (a *actorState) runInput(mode FlushMode) {
	if a.inStage == nil || a.stopping {
		return
	}
	// A read callback that runs inline (no DeferCallbacks) may drain an
	// input that the stage had filled to its high watermark. Nothing else
	// would wake the actor for the raw bytes still waiting (the reader may
	// have nothing more to deliver, and a peer waiting for our reply never
	// sends), so go round again while that is what stopped the stage.
	for a.runInputOnce(mode) && !a.stopping && a.enabled(Read) && !a.readSuspended() {
		mode = Normal
	}
}

// runInputOnce is one round of runInput. It reports whether the stage
// stopped because the input was full while raw bytes still waited.
func (a *actorState) runInputOnce(mode FlushMode) (full bool) {
	produced := false
	for called := false; ; called = true {
		waiting := a.rawIn.Len() > 0 || stageBuffered(a.inStage) > 0
		canRun := waiting && (mode != Normal || (a.enabled(Read) && !a.readSuspended()))
		if !canRun && (called || mode == Normal) {
			full = mode == Normal && waiting && a.readSuspended()
			break
		}
		limit := -1
		if high := a.readHigh(); mode == Normal && high > 0 {
			limit = high - a.input.Len()
		}
		inBefore, rawBefore := a.input.Len(), a.rawIn.Len()
		a.input.setFrozen(false, false)
		res, err := a.callStage(a.inStage, &a.input, &a.rawIn, limit, mode)
		a.input.setFrozen(false, true)
		if !a.stageResult(Reading, res, err) {
			return false
		}
		if a.input.Len() != inBefore {
			produced = true
		}
		if res != StageOK || (a.input.Len() == inBefore && a.rawIn.Len() == rawBefore) {
			break
		}
	}
	if produced {
		a.resetTimer(Read)
		a.unnotified = true
		a.readProgress()
	}
	return full && produced
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
		a.notify(Write)
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
	a.b.mail.notify()
}

func (a *actorState) runOutputOnce(mode FlushMode) {
	for called := false; ; called = true {
		room := a.outRoomRaw() // negative: the transport sets no limit
		waiting := a.output.Len() > 0 || stageBuffered(a.outStage) > 0
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
			a.resetTimer(Write)
		}
		if res != StageOK || (a.output.Len() == outBefore && a.rawOut.Len() == rawBefore) {
			break
		}
	}
}

// stageBuffered returns how many bytes st holds ready to emit without more
// input, when it says so through an optional Buffered method (see Stage).
func stageBuffered(st Stage) int {
	if b, ok := st.(interface{ Buffered() int }); ok {
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

func (a *actorState) flush(d Dir, mode FlushMode) {
	if d&Read != 0 {
		a.runInput(mode)
	}
	if d&Write != 0 {
		a.runOutput(mode)
		if mode == Finished {
			a.wantCloseWrite = true
		}
	}
}
