package pipeline

import (
	"fmt"
	"io"

	"github.com/bevgo/bev/actor"
)

// Stage is a filter step (libevent's bufferevent_filter_cb): Process moves
// bytes from src to dst, at most limit of them into dst (a negative limit
// means no limit), transforming them as it likes, and reports what
// happened. A filter's input stage runs between the bytes its underlying
// delivered and the filter's input; its output stage between the filter's
// output and what is written to the underlying. Both run on the filter's
// actor goroutine, one call at a time and never re-entered, so a Stage
// needs no locking; a Stage value must not be shared by two filters.
//
// mode is Normal while streaming (limit comes from the watermarks), Flush
// when the user wants buffered bytes pushed out (a compressor's sync
// flush), and Finished at end of stream (a compressor's close; for an
// input stage, the underlying reached EOF). With Flush and Finished the
// stage is called at least once, even with src empty, and may be called
// again in the same mode: it must tolerate that. An input stage's limit
// holds in every mode (a Finished call may have little room, or none, and
// is repeated as the user drains): a stage must not fail at Finished for
// bytes that its limit kept it from reaching.
//
// A stage that holds output back (it produced more than limit allowed)
// should implement Buffered() int, reporting the bytes it holds, so that
// the filter calls it again as room appears even when src is empty. A
// stage may also hold bytes to release later on its own (a delay, as the
// toxics of package toxic do), reporting them through Buffered and waking
// the filter (Flush with actor.Normal) when they are due: the filter's
// EOF and its half-close wait until it holds nothing. A
// stage that owns resources may implement io.Closer: [NewFilter] closes it
// when the filter stops.
type Stage = actor.Stage

// Result is what a Stage returns: libevent's BEV_OK, BEV_NEED_MORE and
// BEV_ERROR.
type Result = actor.StageResult

// The stage results.
const (
	// OK means the stage made progress (BEV_OK).
	OK Result = actor.StageOK
	// NeedMore means the stage can do nothing more until more input
	// arrives (BEV_NEED_MORE).
	NeedMore Result = actor.StageNeedMore
	// Failed means the stage failed; the error returned with it is the
	// cause (BEV_ERROR). The filter is closed with an Error event carrying
	// that cause.
	Failed Result = actor.StageError
)

// StageFunc adapts a function to a Stage.
type StageFunc func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error)

// Process calls f and returns what f returns.
func (f StageFunc) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	return f(dst, src, limit, mode)
}

// PassThrough returns a stage that moves up to limit bytes unchanged,
// without copying whole chunks. It is what a nil Stage means to
// [NewFilter] and [Chain]. It returns OK when it moved bytes and NeedMore
// when src was empty or limit zero.
func PassThrough() Stage { return passThrough{} }

type passThrough struct{}

func (passThrough) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if moveN(dst, src, limit) == 0 {
		return NeedMore, nil
	}
	return OK, nil
}

// pullMax bounds the contiguous views taken with Pullup, so that no view
// needs memory outside the chunk pools.
const pullMax = 64 << 10

// moveN moves min(n, src.Len()) bytes from src to dst (all of src when n
// is negative) and returns how many. Whole chunks move without copying;
// only a chunk the limit splits is copied (actor.Buffer.MoveFromN).
// Neither buffer may be frozen.
func moveN(dst, src *actor.Buffer, n int) int {
	if n < 0 {
		n = src.Len()
	}
	moved, _ := dst.MoveFromN(src, n)
	return moved
}

// buffered is a stage's optional Buffered method (see Stage).
type buffered interface{ Buffered() int }

// closeStage closes st if it owns resources.
func closeStage(st Stage) error {
	if c, ok := st.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// CheckProcess returns an error wrapping ErrInvalid when a Stage's
// Process is called with a nil buffer or an unknown flush mode, and nil
// otherwise. A bufferevent always passes its buffers and a known mode;
// every stage of this package checks first, so that one called by hand
// fails instead of panicking or guessing, and a stage written elsewhere
// (package pipeline/toxic's) can check the same.
func CheckProcess(dst, src *actor.Buffer, mode actor.FlushMode) error {
	if dst == nil || src == nil {
		return fmt.Errorf("%w: stage called with a nil buffer", ErrInvalid)
	}
	if mode < actor.Normal || mode > actor.Finished {
		return fmt.Errorf("%w: flush mode %v", ErrInvalid, mode)
	}
	return nil
}
