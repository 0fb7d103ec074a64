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
// progress. The chain's limit applies to its destination; in Normal mode
// each inner buffer is held to the same limit, so a chain never holds more
// than its stages do plus limit per link. Flush and Finished go to every
// stage, in order, after the stages before it have emitted what they held.
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
		stages: make([]Stage, len(stages)),
		held:   make([]buffered, len(stages)),
		mid:    make([]actor.Buffer, len(stages)-1),
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
	err  error
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
	if c.err != nil {
		return Failed, c.err
	}
	dstBefore := dst.Len()
	last := len(c.stages) - 1
	progress := false
	for {
		round := false
		for i, st := range c.stages {
			in, out, lim := src, dst, limit
			if i > 0 {
				in = &c.mid[i-1]
			}
			if i < last {
				out = &c.mid[i]
				if mode == actor.Normal && limit >= 0 {
					lim = max(0, limit-out.Len())
				} else {
					lim = -1
				}
			} else if limit >= 0 {
				lim = max(0, limit-(dst.Len()-dstBefore))
			}
			if mode == actor.Normal && (lim == 0 || (in.Len() == 0 && c.heldBy(i) == 0)) {
				continue
			}
			inBefore, outBefore := in.Len(), out.Len()
			res, err := st.Process(out, in, lim, mode)
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
