package actor

import (
	"fmt"
	"time"
)

// Session is the handle a callback gets: the bufferevent seen from its own
// actor goroutine. Its methods act at once, on the real buffers, with no
// message and no wait; Trigger runs the callback before it returns unless
// deferred. A Session is valid only during the callback (or Do function)
// it was given to; keep the *Bufferevent instead.
type Session struct {
	a *actorState
}

// Bufferevent returns the bufferevent this session belongs to.
func (s *Session) Bufferevent() *Bufferevent { return s.a.b }

// Input returns the input buffer. Its end is frozen (only the transport
// appends), so Write and friends on it fail with ErrFrozen; drain it
// freely.
func (s *Session) Input() *Buffer { return &s.a.input }

// Output returns the output buffer. Append to it freely; without an output
// stage its front is frozen (the writer loop may be sending those bytes),
// so Read, Drain and friends on it fail with ErrFrozen.
func (s *Session) Output() *Buffer { return &s.a.output }

// Read removes up to len(p) bytes from the input into p and returns how
// many; 0 when the input is empty.
func (s *Session) Read(p []byte) int {
	n, _ := s.a.input.Read(p)
	return n
}

// ReadBuffer moves all of the input to the end of dst without copying. It
// fails with an error wrapping ErrInvalid for a nil dst or dst being the
// input itself.
func (s *Session) ReadBuffer(dst *Buffer) error {
	if dst == nil {
		return fmt.Errorf("%w: nil buffer", ErrInvalid)
	}
	return dst.MoveFrom(&s.a.input)
}

// Write copies p to the end of the output. It returns nil: the output's
// end is never frozen. Once the output has failed (Bufferevent.Failed is
// closed), what it appends is never written.
func (s *Session) Write(p []byte) error {
	_, err := s.a.output.Write(p)
	return err
}

// WriteBuffer moves all of src to the end of the output without copying.
// It fails with an error wrapping ErrInvalid for a nil src.
func (s *Session) WriteBuffer(src *Buffer) error {
	if src == nil {
		return fmt.Errorf("%w: nil buffer", ErrInvalid)
	}
	return s.a.output.MoveFrom(src)
}

// Enable is Bufferevent.Enable, applied at once. It fails with an error
// wrapping ErrInvalid for an unknown direction.
func (s *Session) Enable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	s.a.b.enable(d)
	s.a.onEnable(d)
	return nil
}

// Disable is Bufferevent.Disable, applied at once. It fails with an error
// wrapping ErrInvalid for an unknown direction.
func (s *Session) Disable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	s.a.b.enabled.And(^uint32(d))
	return nil
}

// Enabled returns the enabled directions.
func (s *Session) Enabled() Dir { return s.a.b.Enabled() }

// SetWatermark is Bufferevent.SetWatermark, applied at once, and fails as
// it does: with an error wrapping ErrInvalid for negative marks, a high
// mark below the low mark, or an unknown direction.
func (s *Session) SetWatermark(d Dir, low, high int) error {
	return s.a.b.setWatermark(d, low, high)
}

// Watermark is Bufferevent.Watermark: it fails with an error wrapping
// ErrInvalid unless d is exactly Read or exactly Write.
func (s *Session) Watermark(d Dir) (low, high int, err error) { return s.a.b.Watermark(d) }

// SetTimeouts is Bufferevent.SetTimeouts, applied at once. It fails with
// an error wrapping ErrInvalid for a negative duration, and then changes
// nothing.
func (s *Session) SetTimeouts(read, write time.Duration) error {
	if err := s.a.b.setTimeouts(read, write); err != nil {
		return err
	}
	s.a.disarmTimeouts(Read | Write)
	return nil
}

// Trigger is Bufferevent.Trigger; the callback runs before Trigger returns
// unless TriggerDefer or DeferCallbacks defers it. It fails with an error
// wrapping ErrInvalid for an unknown direction or option.
func (s *Session) Trigger(d Dir, opts TriggerOption) error {
	if err := checkTrigger(d, opts); err != nil {
		return err
	}
	s.a.trigger(d, opts)
	return nil
}

// TriggerEvent is Bufferevent.TriggerEvent, run at once unless deferred.
// It fails with an error wrapping ErrInvalid for an unknown option.
func (s *Session) TriggerEvent(ev Event, opts TriggerOption) error {
	if opts&^(TriggerIgnoreWatermarks|TriggerDefer) != 0 {
		return fmt.Errorf("%w: trigger options %#x", ErrInvalid, uint32(opts))
	}
	s.a.triggerEvent(ev, opts)
	return nil
}

// Flush is Bufferevent.Flush, applied at once: the stages run before Flush
// returns. It fails with an error wrapping ErrInvalid for an unknown
// direction or mode.
func (s *Session) Flush(d Dir, mode FlushMode) error {
	if err := checkFlush(d, mode); err != nil {
		return err
	}
	s.a.flush(d, mode)
	return nil
}

// Close frees the bufferevent (see Bufferevent.Free) from inside its own
// callback: no callback runs after the current one returns.
func (s *Session) Close() {
	s.a.stopping = true
	s.a.b.Free()
}
