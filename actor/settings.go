package actor

import (
	"fmt"
	"sync/atomic"
	"time"
)

// SetWatermark sets the low and high watermarks of each direction in d
// (libevent's setwatermark). Read: the read callback waits for low bytes,
// and reading pauses while the input holds high bytes (0: no limit).
// Write: the write callback runs when the output drains to low, and high
// is where the Out channel, Send and filters writing into this bufferevent
// stop (0: DefaultChannelHighWatermark for the channel, none for filters).
// It fails with an error wrapping ErrInvalid for negative marks, a high
// mark below the low mark, or an unknown direction.
func (b *Bufferevent) SetWatermark(d Dir, low, high int) error {
	if err := b.setWatermark(d, low, high); err != nil {
		return err
	}
	b.mail.post(message{kind: msgWake})
	return nil
}

// setWatermark stores the watermarks of d without waking the actor; it
// fails with ErrInvalid as SetWatermark says.
func (b *Bufferevent) setWatermark(d Dir, low, high int) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if low < 0 || high < 0 {
		return fmt.Errorf("%w: negative watermark (%d, %d)", ErrInvalid, low, high)
	}
	if high > 0 && low > high {
		return fmt.Errorf("%w: low watermark %d above high %d", ErrInvalid, low, high)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	wm := &watermark{low, high}
	if d&Read != 0 {
		b.rwm.Store(wm)
	}
	if d&Write != 0 {
		b.wwm.Store(wm)
	}
	return nil
}

// Watermark returns the low and high watermarks of one direction
// (libevent's getwatermark). It fails with an error wrapping ErrInvalid
// unless d is exactly Read or exactly Write. As the other getters of
// settings, it goes on reporting what was set after the bufferevent has
// stopped.
func (b *Bufferevent) Watermark(d Dir) (low, high int, err error) {
	if b.zero() {
		return 0, 0, errZero
	}
	switch d {
	case Read:
		wm := b.rwm.Load()
		return wm.low, wm.high, nil
	case Write:
		wm := b.wwm.Load()
		return wm.low, wm.high, nil
	}
	return 0, 0, fmt.Errorf("%w: watermark direction must be Read or Write, not %v", ErrInvalid, d)
}

// SetTimeouts sets the read and write timeouts (libevent's set_timeouts);
// zero clears one. A timeout runs only while its direction is wanted: the
// read timeout while reading is enabled and not held back by the high
// watermark or a rate limit, the write timeout while writing is enabled
// and output is waiting. Any progress restarts it; when it expires the
// direction is disabled and the event callback gets Timeout|Reading or
// Timeout|Writing, once. An Enable of the direction made after the
// timeout expired, before the actor got to it, is the later call: the
// Timeout is still reported, and the direction stays enabled with its
// timeout running again. Setting them re-arms both. It fails with an
// error wrapping ErrInvalid for a negative duration.
func (b *Bufferevent) SetTimeouts(read, write time.Duration) error {
	if err := b.setTimeouts(read, write); err != nil {
		return err
	}
	b.mail.post(message{kind: msgTimeouts})
	return nil
}

// setTimeouts stores the timeouts without waking the actor; it fails with
// ErrInvalid for a negative duration.
func (b *Bufferevent) setTimeouts(read, write time.Duration) error {
	if read < 0 || write < 0 {
		return fmt.Errorf("%w: negative timeout", ErrInvalid)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.rto.Store(int64(read))
	b.wto.Store(int64(write))
	return nil
}

// Timeouts returns the read and write timeouts (0: none).
func (b *Bufferevent) Timeouts() (read, write time.Duration) {
	if b.zero() {
		return 0, 0
	}
	return time.Duration(b.rto.Load()), time.Duration(b.wto.Load())
}

// SetMaxRead sets the most one read takes from the transport (libevent's
// set_max_single_read); 0 restores DefaultMaxRead. It fails with an error
// wrapping ErrInvalid for a negative n and ErrClosed after the
// bufferevent has stopped.
func (b *Bufferevent) SetMaxRead(n int) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	return setMax(&b.maxRead, n, DefaultMaxRead)
}

// SetMaxWrite sets the most one write hands the transport (libevent's
// set_max_single_write); 0 restores DefaultMaxWrite. It fails with an
// error wrapping ErrInvalid for a negative n and ErrClosed after the
// bufferevent has stopped.
//
// A socket whose send buffer was made much smaller than DefaultMaxWrite
// (SetWriteBuffer of a few KiB) wants writes of about that size: on
// Linux, TCP crawls when one write is many times its send buffer (4 MiB
// in 256 KiB writes through an 8 KiB buffer takes about 30 s over
// loopback, with plain Go's net.Conn as well, against 0.1 s in 16 KiB
// writes).
func (b *Bufferevent) SetMaxWrite(n int) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	return setMax(&b.maxWrite, n, DefaultMaxWrite)
}

// setMax stores n in v, or def for n == 0; it fails with ErrInvalid for a
// negative n.
func setMax(v *atomic.Int64, n, def int) error {
	if n < 0 {
		return fmt.Errorf("%w: negative maximum %d", ErrInvalid, n)
	}
	if n == 0 {
		n = def
	}
	v.Store(int64(n))
	return nil
}

// MaxRead returns the per-read maximum (libevent's get_max_single_read).
func (b *Bufferevent) MaxRead() int {
	if b.zero() {
		return 0
	}
	return int(b.maxRead.Load())
}

// MaxWrite returns the per-write maximum (libevent's get_max_single_write).
func (b *Bufferevent) MaxWrite() int {
	if b.zero() {
		return 0
	}
	return int(b.maxWrite.Load())
}

// SetPriority sets the priority of the bufferevent's deferred callbacks on
// its Base's dispatcher, 0 being the highest (libevent's priority_set). It
// fails with an error wrapping ErrInvalid outside [0, Base.Priorities())
// and ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) SetPriority(p int) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	if p < 0 || p >= b.base.Priorities() {
		return fmt.Errorf("%w: priority %d outside [0, %d)", ErrInvalid, p, b.base.Priorities())
	}
	b.pri.Store(int32(p))
	return nil
}

// Priority returns the priority of the deferred callbacks (libevent's
// get_priority); by default Base.Priorities()/2.
func (b *Bufferevent) Priority() int {
	if b.zero() {
		return 0
	}
	return int(b.pri.Load())
}

// InputLen returns the number of bytes in the input, as last published by
// the actor.
func (b *Bufferevent) InputLen() int {
	if b.zero() {
		return 0
	}
	return int(b.inLen.Load())
}

// OutputLen returns the number of bytes in the output not yet written to
// the transport (libevent's evbuffer_get_length on the output). Bytes a
// Write, WriteBuffer or Send from any goroutine has handed over count from
// before that call returns, even while they wait for the actor to take
// them, so a sender sees at once what it queued; what the actor has
// written since it last published counts until it publishes again, which
// it does at the end of each of its turns and before each callback and Do
// function it runs: there, OutputLen is exact, bytes handed to the
// transport but not yet written included (Session.Output().Len() leaves
// those out). It is 0 once the bufferevent has stopped.
func (b *Bufferevent) OutputLen() int {
	if b.zero() {
		return 0
	}
	return int(b.outLen.Load())
}

// Written returns how many bytes the bufferevent's transports have taken
// from its output since it was made: written to the connection (the
// kernel, or a TLS layer, took them), or handed to the partner or the
// underlying bufferevent. With an output stage it counts what the stage
// produced, which is what the transport takes. A write counts once the
// transport has taken it, whichever goroutine made it, so the count never
// runs ahead of the transport, and it never decreases. Once the
// bufferevent has stopped (after Close returns, or Done is closed) it is
// final: what was given to the output (with no output stage) minus
// Written is what the close dropped unwritten. libevent has no
// counterpart. It is 0 for the zero Bufferevent.
func (b *Bufferevent) Written() int64 {
	if b.zero() {
		return 0
	}
	return b.written.Load()
}

// Enable turns on reading and/or writing (libevent's enable). It re-arms
// the timeouts of those directions, and input that arrived while reading
// was disabled is reported then. It fails with an error wrapping
// ErrInvalid for an unknown direction and ErrClosed after the bufferevent
// has stopped.
func (b *Bufferevent) Enable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.enable(d)
	b.mail.post(message{kind: msgEnable, dir: d})
	return nil
}

// Disable turns off reading and/or writing (libevent's disable). A read
// already under way in the reader loop may still land in the input; its
// bytes, and the EOF or error it may meet, are reported when reading is
// enabled again (libevent does not read while reading is disabled, so it
// notices neither before then). Errors as Enable.
func (b *Bufferevent) Disable(d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: direction %v", ErrInvalid, d)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.enabled.And(^uint32(d))
	b.mail.post(message{kind: msgWake})
	return nil
}

// Enabled returns the enabled directions (libevent's get_enabled): the
// user's intent, whether or not a watermark or rate limit holds the
// direction back. It is 0 after the bufferevent has stopped.
func (b *Bufferevent) Enabled() Dir {
	if b.zero() || isClosedChan(b.done) {
		// exit stores 0, but an Enable or In whose closed check passed
		// just before the stop may set its bits after that store.
		return 0
	}
	return b.enabledDirs()
}

// The enabled word (Bufferevent.enabled): the enabled directions in its
// low byte, and above them, for Read and for Write, a 12-bit count of the
// calls that enabled it, which wraps. A timeout clears its direction only
// if no call enabled it since its timer fired (clearUnlessEnabledSince):
// Advance on a manual clock, then Enable(Read), leaves reading enabled
// whenever the actor gets to the timer's message.
const (
	enabledDirBits   = 8
	enabledDirMask   = 1<<enabledDirBits - 1
	enabledCountBits = 12
	enabledCountMask = 1<<enabledCountBits - 1
)

// enabledCountShift is where d's count sits in the enabled word; d is
// Read or Write.
func enabledCountShift(d Dir) uint {
	if d == Read {
		return enabledDirBits
	}
	return enabledDirBits + enabledCountBits
}

// enabledDirs returns the enabled directions.
func (b *Bufferevent) enabledDirs() Dir { return Dir(b.enabled.Load() & enabledDirMask) }

// enable sets the directions of d and counts the call for each, in one
// atomic step.
func (b *Bufferevent) enable(d Dir) {
	for {
		old := b.enabled.Load()
		w := old | uint32(d)
		for _, x := range [...]Dir{Read, Write} {
			if d&x != 0 {
				sh := enabledCountShift(x)
				c := (w>>sh + 1) & enabledCountMask
				w = w&^(enabledCountMask<<sh) | c<<sh
			}
		}
		if b.enabled.CompareAndSwap(old, w) {
			return
		}
	}
}

// clearUnlessEnabledSince clears direction d (Read or Write) unless a
// call enabled it after snap, the enabled word as it was when a timer
// fired: that call came later, and wins.
func (b *Bufferevent) clearUnlessEnabledSince(d Dir, snap uint32) {
	sh := enabledCountShift(d)
	for {
		old := b.enabled.Load()
		if (old>>sh)&enabledCountMask != (snap>>sh)&enabledCountMask {
			return
		}
		if b.enabled.CompareAndSwap(old, old&^uint32(d)) {
			return
		}
	}
}
