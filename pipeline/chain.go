package pipeline

import (
	"errors"
	"fmt"

	"github.com/bevgo/bev/actor"
)

// Chain composes stages into one, for either direction: bytes pass
// through the stages in argument order, the first stage reading the
// chain's source and the last writing its destination, with a buffer
// owned by the chain between each two. A nil stage passes bytes through
// unchanged; Chain() with no stages is PassThrough().
//
// Every call runs the stages front to back, repeatedly, until none makes
// progress. The chain's limit applies to its destination, and in every
// mode each inner buffer is held to the same limit, so a chain never holds
// more than its stages do plus limit per link (more only when a stage
// can do nothing with a full link, as a frame larger than the limit). Flush and Finished go to
// each stage, in order, once the stages before it have emitted all they
// held (until then it is called in Normal mode); the filter calls the
// chain again, in that mode, as room appears.
// A stage that fails or returns an unknown result makes the chain return
// Failed with that cause (and the stage's position), which closes the
// filter; a panic is recovered where the filter calls the chain.
//
// The chain reports what it holds through Buffered and closes the stages
// that implement io.Closer when it is closed.
func Chain(stages ...Stage) Stage {
	if len(stages) == 0 {
		return PassThrough()
	}
	c := &chain{
		stages:  make([]Stage, len(stages)),
		held:    make([]buffered, len(stages)),
		mid:     make([]actor.Buffer, len(stages)-1),
		starved: make([]bool, len(stages)-1),
	}
	for i, st := range stages {
		if st == nil {
			st = PassThrough()
		}
		c.stages[i] = st
		c.held[i], _ = st.(buffered)
	}
	return c
}

type chain struct {
	stages []Stage
	// held[i] is stages[i] as a buffered stage, or nil: looked up once
	// here rather than by a type assertion on every call.
	held []buffered
	mid  []actor.Buffer // mid[i] is between stages[i] and stages[i+1]
	// starved[i]: stages[i+1] last did nothing with all of mid[i] while
	// it had room, so mid[i] may grow past the limit (by a limit a call).
	starved []bool
	err     error
}

// heldBy is what the i'th stage holds back.
func (c *chain) heldBy(i int) int {
	if c.held[i] == nil {
		return 0
	}
	return c.held[i].Buffered()
}

// Process runs the stages; see Chain.
func (c *chain) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if c.err != nil {
		return Failed, c.err
	}
	dstBefore := dst.Len()
	last := len(c.stages) - 1
	progress := false
	for {
		round := false
		// upstreamDone: every stage before this one has had mode and
		// has nothing more to give. Until then a stage gets Normal: a
		// Finished it got while the stage before still held bytes (the
		// limit keeping them back) would call the stream cut short.
		upstreamDone := true
		for i, st := range c.stages {
			in, out, lim := src, dst, limit
			if i > 0 {
				in = &c.mid[i-1]
			}
			if i < last {
				out = &c.mid[i]
				if limit >= 0 && c.starved[i] {
					lim = limit // the next stage needs more than a link holds
				} else if limit >= 0 {
					lim = max(0, limit-out.Len())
				} else {
					lim = -1
				}
			} else if limit >= 0 {
				lim = max(0, limit-(dst.Len()-dstBefore))
			}
			m := mode
			if !upstreamDone {
				m = actor.Normal
			}
			if m == actor.Normal && (lim == 0 || (in.Len() == 0 && c.heldBy(i) == 0)) {
				upstreamDone = false
				continue
			}
			inBefore, outBefore := in.Len(), out.Len()
			res, err := st.Process(out, in, lim, m)
			switch res {
			case OK, NeedMore:
			case Failed:
				if err == nil {
					err = errors.New("pipeline: stage failed")
				}
				c.err = wrap(err, fmt.Sprintf("chain stage %d", i))
				return Failed, c.err
			default:
				c.err = fmt.Errorf("%w: chain stage %d returned %d", ErrUnknownResult, i, res)
				return Failed, c.err
			}
			if in.Len() != inBefore || out.Len() != outBefore {
				round = true
			}
			upstreamDone = upstreamDone && m == mode && in.Len() == 0 && c.heldBy(i) == 0
			if i > 0 {
				// A stage that could do nothing with its whole input, with
				// room for output, needs more than the link holds (a frame
				// larger than the limit): let the link grow by a limit.
				c.starved[i-1] = lim != 0 && in.Len() == inBefore && out.Len() == outBefore &&
					in.Len() > 0 && c.heldBy(i) == 0
			}
		}
		if !round {
			break
		}
		progress = true
	}
	if progress {
		return OK, nil
	}
	return NeedMore, nil
}

// Buffered is what the chain holds between its stages and inside them.
func (c *chain) Buffered() int {
	n := 0
	for i := range c.mid {
		n += c.mid[i].Len()
	}
	for i := range c.stages {
		n += c.heldBy(i)
	}
	return n
}

// Close closes the stages that own resources and drops what the chain
// holds.
func (c *chain) Close() error {
	var errs []error
	for _, st := range c.stages {
		errs = append(errs, closeStage(st))
	}
	for i := range c.mid {
		c.mid[i].Reset()
	}
	return errors.Join(errs...)
}
