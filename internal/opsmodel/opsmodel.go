// Package opsmodel is the model of one bufferevent under a fuzzed program
// of operations, shared by the model-based fuzz targets that drive a
// bufferevent directly: package actor's FuzzPairOps (each end of a pair)
// and package conn's FuzzSocketOps (a socket over a loopback
// connection). A target embeds an End in its own type, which knows what
// lies at the other end of the stream (a partner end, a raw peer) and
// answers the End's questions about it through Far; the End keeps what
// the program did to the bufferevent (bytes accepted, watermarks,
// timeouts, maxima, whether it may be closed) and checks each call's
// error, each callback and event, and every byte received against that
// record. What the two targets do differently (their operations beyond
// these, their final phase, the far side's own model) stays in them.
//
// An End's plain fields belong to the program's goroutine; its atomics
// are shared with the callbacks, which run on the actor, and a target
// updates them before it calls the method they describe (a bound is
// raised, a floor lowered, a state made less certain), so that a callback
// never holds the bufferevent to a promise stricter than the one in
// force.
package opsmodel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// Style is how a program consumes a bufferevent's input: one style per
// run, since the Read callback and In are two views of one delivery.
type Style uint8

// The consumption styles.
const (
	Poll     Style = iota // the test calls TryRead or ReadBuffer; the Read callback only signals
	Callback              // the Read callback takes the input
	Channel               // the test receives from In, and events from Events
)

// DecodeStyle returns the style a header byte h names: its low two bits,
// modulo 3. It never fails.
func DecodeStyle(h byte) Style { return Style(h & 3 % 3) }

// String returns the style's name, or "Style(n)" for a value DecodeStyle
// never returns.
func (s Style) String() string {
	if names := [...]string{"poll", "callback", "channel"}; int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("Style(%d)", uint8(s))
}

// The argument decoders the targets share: one argument byte of an
// operation decoded into an argument of the bufferevent method, valid or
// not. None fails.

// Dir decodes a direction, valid or not (0 and bits beyond Read|Write).
func Dir(a byte) actor.Dir { return actor.Dir(a & 7) }

// Low decodes a low watermark, from -512 to 508.
func Low(b byte) int { return int(int8(b)) * 4 }

// High decodes a high watermark, from -2048 to 2032.
func High(c byte) int { return int(int8(c)) * 16 }

// Mode decodes a flush mode from -3 to 3: 0 to 2 are valid.
func Mode(b byte) actor.FlushMode { return actor.FlushMode(int8(b) % 4) }

// MaxIO decodes a per-read or per-write maximum from -8192 to 8128.
func MaxIO(b byte) int { return int(int8(b)) * 64 }

// ValidDir reports whether d is Read, Write or both; false means a call
// with d must fail with actor.ErrInvalid.
func ValidDir(d actor.Dir) bool { return d != 0 && d&^(actor.Read|actor.Write) == 0 }

// ValidTrig reports whether opts holds only known trigger options; false
// means a Trigger with opts must fail with actor.ErrInvalid.
func ValidTrig(opts actor.TriggerOption) bool {
	return opts&^(actor.TriggerIgnoreWatermarks|actor.TriggerDefer) == 0
}

// ReadError reports whether ev reports a read error. Deferred events may
// come ORed together (with the first one's cause): Reading|Error then may
// be a Writing|Error and a Reading|EOF, or a Reading|Timeout, so only a
// set with neither EOF nor Writing counts. It returns false for any
// event that is no read error.
func ReadError(ev actor.Event, deferred bool) bool {
	return ev&(actor.Reading|actor.Error) == actor.Reading|actor.Error &&
		(!deferred || ev&(actor.EOF|actor.Writing) == 0)
}

// The model's view of whether a bufferevent is open, End.State's values.
const (
	Alive     int32 = iota // nothing closed it, nor can anything the program did
	Uncertain              // Free, Drain, or an armed Free in a callback: it may stop at any time
	Closed                 // Close returned
)

// Counts counts the events that may come at most once, as one view (the
// event callback, or Events) sees them.
type Counts struct {
	EOF, ReadErr, WriteErr atomic.Int32
}

// Reporter is where an End reports failures: a *testkit.Run. Errorf
// reports and goes on, from any goroutine; Fatalf reports and ends the
// run, from the program's goroutine only.
type Reporter interface {
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Far is what an End asks of its target about the other end of its
// stream: the answers that depend on what lies there (a partner end, a
// raw peer) and on what the program did to it. A target implements it on
// its own type; its methods may be called from the callbacks.
type Far interface {
	// String describes the far side's state for a failure's message.
	String() string
	// MayFailWrites reports whether a write failure is allowed now:
	// false while nothing the program did can have broken the output.
	MayFailWrites() bool
	// WriteFailure reports whether err is what a write meets when the
	// output failed (a broken pipe, a reset); false fails the write's
	// check.
	WriteFailure(err error) bool
	// DrainFailure reports whether a Drain that nothing else cut short
	// may return err, which is neither nil nor the context's; false
	// fails the Drain's check.
	DrainFailure(err error) bool
	// Wrote returns how many bytes of its stream the far side's
	// transport took so far, for a failure's message.
	Wrote() int64
	// FarEvent checks what of an event depends on the far side (may an
	// EOF, a read error, a timeout come now), reporting through the
	// End's Reporter; the End has checked the rest.
	FarEvent(ev actor.Event, err error, where string, counts *Counts, deferred bool)
}

// Config is what an End knows of its program that does not change in a
// run.
type Config struct {
	Style    Style
	Deferred bool // the bufferevent has actor.DeferCallbacks
	// CBChunk is the most a read callback takes in one call; 0: all.
	CBChunk int
	// Pause: a read callback that leaves input behind disables reading
	// through its Session until the program or the final phase enables
	// it again.
	Pause bool
	// Stream and FarStream are the ids of the test streams
	// (testkit.UniqueAt) the bufferevent writes and the far side writes.
	Stream, FarStream int
	// Budget is the most bytes the bufferevent writes in a program.
	Budget int
	// Wait bounds each wait for something the bufferevent owes the run
	// (an end of stream, a Drain's return).
	Wait time.Duration
	// What names the bufferevent in messages, as "a pair" does.
	What string
	// Prefix starts every message, as "end 0: " does; it may be empty.
	Prefix string
}

// End is the model of one bufferevent under a program, with the checks
// made against it. Init makes it ready; it must not be copied after.
type End struct {
	BE *actor.Bufferevent // the bufferevent under the program

	cfg    Config
	rep    Reporter
	far    Far
	drains *sync.WaitGroup

	In  <-chan []byte          // In, for the channel style; nil once closed
	Evs <-chan actor.EventInfo // Events, for the channel style

	Sent            int           // bytes Write, WriteBuffer and Send accepted
	written         int64         // Written() when last looked at
	ReadOn          bool          // reading may be enabled
	CurLow, CurHigh int           // the read watermarks last set
	WLow, WHigh     int           // the write watermarks last set
	RTO, WTO        time.Duration // the timeouts last set
	MaxRead         int           // the per-read maximum MaxRead should report
	MaxWrite        int           // the per-write maximum MaxWrite should report
	AliveAtFinish   bool          // open, never closing and not half-closed when the program ended
	Complete        bool          // the end read its far side's end of stream and took every byte before it
	DrainStarted    bool
	// FreedHere: the program's goroutine called Free on the bufferevent,
	// so every later call it makes must fail with ErrClosed.
	FreedHere bool

	State      atomic.Int32 // Alive, Uncertain or Closed
	HalfClosed atomic.Bool  // a Flush(Write, Finished) or Drain was asked
	OtherClose atomic.Bool  // something besides its own Drain may close it
	// Bound is the most the input may hold: the largest read high
	// watermark in force while reading was enabled; -1 for none.
	Bound atomic.Int64
	// LowFloor is the least read low watermark in force while reading
	// was enabled (MaxInt64 before it ever was): the read callback sees
	// at least that much input.
	LowFloor       atomic.Int64
	WLowCeil       atomic.Int64 // the largest write low watermark ever set
	ReadTriggered  atomic.Bool
	WriteTriggered atomic.Bool
	TimeoutsSet    atomic.Bool // a timeout was set
	Draining       atomic.Bool // the final phase: the read callback takes everything
	SelfFreed      atomic.Bool // a callback of its own called Session.Close
	Readable       chan struct{}
	Ended          chan struct{} // closed at the end of the read side
	endOnce        sync.Once
	CBCounts       Counts // events seen by the event callback
	ChCounts       Counts // events seen on Events

	mu    sync.Mutex // guards following
	got   int        // bytes received, checked against the far side's stream
	atEnd bool       // the read side ended: nothing more may arrive
}

// Init makes e the model of be, a bufferevent made with reading disabled
// and the default watermarks, whose per-read and per-write maxima are
// maxRead and maxWrite: it reports to rep, asks far about the other end,
// and counts its Drains' goroutines in drains. It cannot fail.
func (e *End) Init(be *actor.Bufferevent, cfg Config, rep Reporter, far Far, drains *sync.WaitGroup, maxRead, maxWrite int) {
	e.BE, e.cfg, e.rep, e.far, e.drains = be, cfg, rep, far, drains
	e.MaxRead, e.MaxWrite = maxRead, maxWrite
	e.Readable = make(chan struct{}, 1)
	e.Ended = make(chan struct{})
	e.Bound.Store(0) // reading starts disabled: nothing arrives
	e.LowFloor.Store(math.MaxInt64)
}

// errorf reports a failure with the End's prefix.
func (e *End) errorf(format string, args ...any) { e.rep.Errorf(e.cfg.Prefix+format, args...) }

// fatalf reports a failure with the End's prefix and ends the run.
func (e *End) fatalf(format string, args ...any) { e.rep.Fatalf(e.cfg.Prefix+format, args...) }

// Deferred reports whether callbacks wait for a turn (DeferCallbacks), so
// that the state they see may have moved on since they were asked for.
func (e *End) Deferred() bool { return e.cfg.Deferred }

// MakeUncertain marks a live bufferevent as one that may stop at any
// time; it does nothing to one that is not Alive.
func (e *End) MakeUncertain() { e.State.CompareAndSwap(Alive, Uncertain) }

// NoteTrigger records that the callbacks of d may run on demand, outside
// the watermark promises.
func (e *End) NoteTrigger(d actor.Dir) {
	if d&actor.Read != 0 {
		e.ReadTriggered.Store(true)
	}
	if d&actor.Write != 0 {
		e.WriteTriggered.Store(true)
	}
}

// Expect checks the error of a call that changes state: ErrInvalid for
// bad arguments (ErrClosed too once the bufferevent may be closed, as a
// closed check may come first), nil on a live one, nil or ErrClosed on
// one that may have stopped, ErrClosed on a closed one or after the
// program's own Free. Any other error is reported as a failure.
func (e *End) Expect(what string, err error, valid bool) {
	st := e.State.Load()
	ok := false
	switch {
	case !valid:
		ok = errors.Is(err, actor.ErrInvalid) || st != Alive && errors.Is(err, actor.ErrClosed)
	case e.FreedHere:
		ok = errors.Is(err, actor.ErrClosed)
	case st == Alive:
		ok = err == nil
	case st == Uncertain:
		ok = err == nil || errors.Is(err, actor.ErrClosed)
	default:
		ok = errors.Is(err, actor.ErrClosed)
	}
	if !ok {
		e.errorf("(state %d): %s = %v (arguments valid: %v)", st, what, err, valid)
	}
}

// ExpectWrite checks the error of a Write, WriteBuffer or Send: as
// Expect, but a write may also fail with the far side's failure (Far's
// WriteFailure) once the output may have failed, and a Send (ctxErr)
// with its context's error; after the program's own Free only with
// ErrClosed. Any other error is reported as a failure.
func (e *End) ExpectWrite(what string, err error, ctxErr bool) {
	st := e.State.Load()
	ok := err == nil && st != Closed ||
		errors.Is(err, actor.ErrClosed) && st != Alive ||
		e.far.WriteFailure(err) && e.far.MayFailWrites() ||
		ctxErr && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if e.FreedHere {
		ok = errors.Is(err, actor.ErrClosed)
	}
	if !ok {
		e.errorf("(state %d, half-closed %v, far side: %v): %s = %v", st, e.HalfClosed.Load(), e.far, what, err)
	}
}

// The ways WriteNext writes.
const (
	ByWrite       = iota // Write
	ByWriteBuffer        // WriteBuffer
	BySend               // Send, with a 1 ms context
)

// WriteNext writes the next n bytes of the bufferevent's stream (at most
// what the budget leaves) by how (ByWrite, ByWriteBuffer or BySend; a
// Send's context is cancelled first if cancelled) and checks the error
// with ExpectWrite; on success they count as accepted. A WriteBuffer
// must take the whole buffer or none of it.
func (e *End) WriteNext(how int, n int, cancelled bool) {
	n = min(n, e.cfg.Budget-e.Sent)
	var err error
	switch how {
	case ByWrite:
		err = e.BE.Write(testkit.UniqueAt(e.cfg.Stream, e.Sent, n))
		e.ExpectWrite("Write", err, false)
	case ByWriteBuffer:
		var buf actor.Buffer
		buf.Write(testkit.UniqueAt(e.cfg.Stream, e.Sent, n))
		err = e.BE.WriteBuffer(&buf)
		e.ExpectWrite("WriteBuffer", err, false)
		want := n // a failed WriteBuffer takes nothing
		if err == nil {
			want = 0
		}
		if buf.Len() != want {
			e.errorf("WriteBuffer(%d bytes) = %v left %d bytes in the buffer, want %d", n, err, buf.Len(), want)
		}
		buf.Reset()
	case BySend:
		// One piece, so that it is taken whole or not at all.
		high := e.WHigh
		if high == 0 {
			high = actor.DefaultChannelHighWatermark
		}
		n = min(n, high)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if cancelled {
			cancel() // Send may still take it if the actor is ready
		}
		err = e.BE.Send(ctx, testkit.UniqueAt(e.cfg.Stream, e.Sent, n))
		cancel()
		e.ExpectWrite("Send", err, true)
	}
	if err == nil {
		e.Sent += n
	}
}

// Consume consumes input in the run's style: ReadBuffer (if readBuffer)
// or a TryRead of up to n bytes; a Trigger of the read callback with
// opts; or up to recv chunks In has ready. It checks the calls' errors
// and records what it took.
func (e *End) Consume(n int, readBuffer bool, opts actor.TriggerOption, recv int) {
	switch e.cfg.Style {
	case Poll:
		if readBuffer {
			var buf actor.Buffer
			err := e.BE.ReadBuffer(&buf)
			e.Expect("ReadBuffer", err, true)
			if err != nil && buf.Len() != 0 {
				e.errorf("ReadBuffer() = %v with %d bytes", err, buf.Len())
			}
			e.take(&buf, buf.Len(), "ReadBuffer")
			return
		}
		p := make([]byte, n)
		k, err := e.BE.TryRead(p)
		e.Expect("TryRead", err, true)
		if err != nil && k != 0 {
			e.errorf("TryRead() = %d, %v: bytes with an error", k, err)
		}
		e.Record(p[:k], "TryRead")
	case Callback:
		e.NoteTrigger(actor.Read)
		e.Expect("Trigger(Read)", e.BE.Trigger(actor.Read, opts), ValidTrig(opts))
	case Channel:
		for range recv {
			if !e.recvReady() {
				return
			}
		}
	}
}

// recvReady takes one chunk In has ready, if any, and reports whether it
// took one; false also when In is closed or was never asked for.
func (e *End) recvReady() bool {
	if e.In == nil {
		return false
	}
	select {
	case p, ok := <-e.In:
		if !ok {
			e.inClosed()
			return false
		}
		e.Record(p, "In")
		return true
	default:
		return false
	}
}

// inClosed takes the closing of In: on a live bufferevent it means the
// end of the read side, after every byte before it was delivered, and
// Err then says why (the stream's first cause, which may be a write's
// failure); a live one whose Err is nil or ErrClosed is a failure.
func (e *End) inClosed() {
	e.In = nil
	if e.State.Load() != Alive {
		return
	}
	if err := e.BE.Err(); err == nil || errors.Is(err, actor.ErrClosed) {
		e.errorf("In closed on a live bufferevent with Err() = %v, want the stream's end", err)
		return
	}
	e.Complete = true
	e.MarkEnded()
}

// PollEvents takes the events Events has ready (channel style), checks
// each with CheckEvent and hands it to also, if not nil; it does nothing
// once Events is closed or if it was never asked for.
func (e *End) PollEvents(also func(ev actor.Event, err error)) {
	for e.Evs != nil {
		select {
		case ev, ok := <-e.Evs:
			if !ok {
				e.Evs = nil
				return
			}
			e.CheckEvent(ev.Event, ev.Err, "Events", &e.ChCounts, false, nil)
			if also != nil {
				also(ev.Event, ev.Err)
			}
		default:
			return
		}
	}
}

// Enable runs Enable(d), updating the model first, and checks its error
// with Expect.
func (e *End) Enable(d actor.Dir) {
	if ValidDir(d) && d&actor.Read != 0 {
		e.EnableRead()
	}
	e.Expect("Enable", e.BE.Enable(d), ValidDir(d))
}

// Disable runs Disable(d), checks its error with Expect and, when it
// succeeded, updates the model and checks that Enabled no longer has d:
// only the program's goroutine enables, so the bits stay off.
func (e *End) Disable(d actor.Dir) {
	err := e.BE.Disable(d)
	e.Expect("Disable", err, ValidDir(d))
	if err == nil {
		if d&actor.Read != 0 {
			e.ReadOn = false
		}
		if got := e.BE.Enabled(); got&d != 0 {
			e.errorf("Enabled() = %v right after Disable(%v)", got, d)
		}
	}
}

// Flush runs Flush(d, mode), updating the model first (a valid
// Flush(Write, Finished) half-closes), and checks its error with Expect.
func (e *End) Flush(d actor.Dir, mode actor.FlushMode) {
	valid := ValidDir(d) && mode >= actor.Normal && mode <= actor.Finished
	if valid && d&actor.Write != 0 && mode == actor.Finished {
		e.HalfClosed.Store(true)
	}
	e.Expect("Flush", e.BE.Flush(d, mode), valid)
}

// Close runs Close, updating the model, and checks that it returned nil
// (why says why nil is due, for the message) and that Done is closed.
func (e *End) Close(why string) {
	e.MakeUncertain()
	e.OtherClose.Store(true)
	if err := e.BE.Close(); err != nil {
		e.errorf("Close() = %v, want nil%s", err, why)
	}
	e.State.Store(Closed)
	if !testkit.Closed(e.BE.Done()) {
		e.errorf("Done() not closed after Close returned")
	}
}

// CheckWritten checks that Written never decreases between two looks.
func (e *End) CheckWritten() {
	if w := e.BE.Written(); w < e.written {
		e.errorf("Written() went from %d down to %d", e.written, w)
	} else {
		e.written = w
	}
}

// EnableRead updates the model before reading is enabled: the input may
// fill to the read high watermark in force (none for a callback or
// polling user who set none), and the read callback may run from the
// low watermark in force.
func (e *End) EnableRead() {
	e.ReadOn = true
	e.raiseBound(e.CurHigh)
	e.lowerFloor(e.CurLow)
}

// raiseBound raises the input's bound to what the high watermark high
// allows while reading is enabled.
func (e *End) raiseBound(high int) {
	if high == 0 && e.cfg.Style == Channel {
		high = actor.DefaultChannelHighWatermark
	}
	if high == 0 {
		e.Bound.Store(-1)
		return
	}
	if b := e.Bound.Load(); b >= 0 && int64(high) > b {
		e.Bound.Store(int64(high))
	}
}

// lowerFloor lowers the read callback's floor to low.
func (e *End) lowerFloor(low int) {
	if int64(low) < e.LowFloor.Load() {
		e.LowFloor.Store(int64(low))
	}
}

// CheckBound checks that n bytes of input are within the read high
// watermark's bound; where names the look for the failure's message.
func (e *End) CheckBound(n int, where string) {
	if b := e.Bound.Load(); b >= 0 && int64(n) > b {
		e.errorf("%s: input holds %d bytes, above the read high watermark bound %d", where, n, b)
	}
}

// SetWatermark runs SetWatermark, updating the model first, and checks
// its error with Expect and the getters with checkWatermarks.
func (e *End) SetWatermark(d actor.Dir, low, high int) {
	valid := ValidDir(d) && low >= 0 && high >= 0 && (high == 0 || low <= high)
	if valid && d&actor.Read != 0 && e.ReadOn {
		e.raiseBound(high)
		e.lowerFloor(low)
	}
	if valid && d&actor.Write != 0 && int64(low) > e.WLowCeil.Load() {
		e.WLowCeil.Store(int64(low))
	}
	err := e.BE.SetWatermark(d, low, high)
	e.Expect(fmt.Sprintf("SetWatermark(%v, %d, %d)", d, low, high), err, valid)
	if err != nil {
		return
	}
	if d&actor.Read != 0 {
		e.CurLow, e.CurHigh = low, high
	}
	if d&actor.Write != 0 {
		e.WLow, e.WHigh = low, high
	}
	e.checkWatermarks()
}

// checkWatermarks checks that Watermark reports what was set last: a
// goroutine sees its own settings at once, and after a stop too.
func (e *End) checkWatermarks() {
	for _, w := range []struct {
		d         actor.Dir
		low, high int
	}{{actor.Read, e.CurLow, e.CurHigh}, {actor.Write, e.WLow, e.WHigh}} {
		low, high, err := e.BE.Watermark(w.d)
		if err != nil || low != w.low || high != w.high {
			e.errorf("Watermark(%v) = %d, %d, %v, want %d, %d, nil", w.d, low, high, err, w.low, w.high)
		}
	}
}

// SetMax runs SetMaxRead (read) or SetMaxWrite with n and checks its
// error with Expect and the getter against the model.
func (e *End) SetMax(read bool, n int) {
	set, get, model, what := e.BE.SetMaxWrite, e.BE.MaxWrite, &e.MaxWrite, "SetMaxWrite"
	def := actor.DefaultMaxWrite
	if read {
		set, get, model, what = e.BE.SetMaxRead, e.BE.MaxRead, &e.MaxRead, "SetMaxRead"
		def = actor.DefaultMaxRead
	}
	err := set(n)
	e.Expect(fmt.Sprintf("%s(%d)", what, n), err, n >= 0)
	if err == nil {
		*model = n
		if n == 0 {
			*model = def
		}
	}
	if got := get(); got != *model {
		e.errorf("after %s(%d) = %v the getter says %d, want %d", what, n, err, got, *model)
	}
}

// SetTimeouts runs SetTimeouts, updating the model first, and checks its
// error with Expect; it returns that error.
func (e *End) SetTimeouts(rto, wto time.Duration) error {
	valid := rto >= 0 && wto >= 0
	if valid && (rto > 0 || wto > 0) {
		e.TimeoutsSet.Store(true)
	}
	err := e.BE.SetTimeouts(rto, wto)
	e.Expect("SetTimeouts", err, valid)
	if err == nil {
		e.RTO, e.WTO = rto, wto
	}
	return err
}

// Drain starts a Drain in the background, counted in the drains Init was
// given, and checks its result when it returns: within the Wait; and, if
// the bufferevent was alive, not half-closed and not draining already
// when it began and nothing else may close it, nil with everything
// accepted before it written, or an error Far's DrainFailure allows.
func (e *End) Drain() {
	strict := e.State.Load() == Alive && !e.HalfClosed.Load() && !e.DrainStarted
	e.DrainStarted = true
	before := e.Sent
	e.MakeUncertain()
	e.HalfClosed.Store(true)
	e.drains.Add(1)
	go func() {
		defer e.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Wait)
		defer cancel()
		err := e.BE.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			e.errorf("Drain did not finish within %v: %v", e.cfg.Wait, err)
		case !strict || e.OtherClose.Load():
		case err == nil:
			if w := e.BE.Written(); w < int64(before) {
				e.errorf("Drain() = nil but Written() = %d of the %d bytes accepted before it", w, before)
			}
		case e.far.DrainFailure(err):
		default:
			e.errorf("Drain() = %v (far side: %v), want nil, or a failure the far side's state allows", err, e.far)
		}
	}()
}

// JoinDrains waits for the Drains' goroutines counted in drains, as the
// final phase does, and reports whether they all returned within limit;
// on false the waiting goroutine is left to the failed run.
func JoinDrains(drains *sync.WaitGroup, limit time.Duration) bool {
	drained := make(chan struct{})
	go func() {
		drains.Wait()
		close(drained)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-drained:
		return true
	case <-timer.C:
		return false
	}
}

// Record takes bytes the bufferevent received and checks them against
// the far side's stream: nothing after the end of the read side, each
// byte the next of the stream. It is safe from any goroutine.
func (e *End) Record(p []byte, where string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(p) > 0 && e.atEnd {
		e.errorf("%s delivered %d bytes after the end of the read side", where, len(p))
	}
	if off := testkit.UniqueMismatch(e.cfg.FarStream, e.got, p); off >= 0 {
		e.errorf("%s: byte %d of the far side's stream is %#x, want %#x (%d bytes delivered)",
			where, off, p[off-e.got], testkit.UniqueByte(e.cfg.FarStream, off), len(p))
	}
	e.got += len(p)
}

// take reads n bytes of in and records them.
func (e *End) take(in *actor.Buffer, n int, where string) {
	p := make([]byte, n)
	k, err := in.Read(p)
	if n > 0 && (err != nil || k != n) {
		e.errorf("%s: input Read(%d) = %d, %v", where, n, k, err)
	}
	e.Record(p[:k], where)
}

// TakeRest takes all of in, from the event callback that reports the
// end of the read side, and records that nothing more may arrive.
func (e *End) TakeRest(in *actor.Buffer, where string) {
	e.take(in, in.Len(), where)
	e.mu.Lock()
	e.atEnd = true
	e.mu.Unlock()
}

// Received returns how many bytes the bufferevent received.
func (e *End) Received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

// MarkEnded records the end of the read side; it is safe to call more
// than once.
func (e *End) MarkEnded() { e.endOnce.Do(func() { close(e.Ended) }) }

// Enter is what every callback does first: no callback may run after
// Close returned, nor after the bufferevent's own callback called
// Session.Close.
func (e *End) Enter(what string) {
	if e.State.Load() == Closed {
		e.errorf("%s callback ran after Close returned", what)
	}
	if e.SelfFreed.Load() {
		e.errorf("%s callback ran after a callback called Session.Close", what)
	}
}

// ReadCallback is the body of the Read callback: it checks the input
// against the read watermarks, takes it in the callback style (pausing
// reading if Config.Pause says so) and signals Readable. A read callback
// for an In user that nothing triggered is a failure.
func (e *End) ReadCallback(s *actor.Session) {
	e.Enter("read")
	in := s.Input()
	e.CheckBound(in.Len(), "read callback")
	triggered := e.ReadTriggered.Load()
	style := e.cfg.Style
	if !triggered && (style == Callback || style == Poll && !e.cfg.Deferred) {
		if floor := e.LowFloor.Load(); in.Len() == 0 || int64(in.Len()) < floor {
			e.errorf("read callback with %d bytes of input, below the read low watermark (floor %d)", in.Len(), floor)
		}
	}
	switch style {
	case Channel:
		if !triggered {
			e.errorf("read callback ran for an In user")
		}
	case Callback:
		n := in.Len()
		if c := e.cfg.CBChunk; c > 0 && !e.Draining.Load() {
			n = min(n, c)
		}
		e.take(in, n, "read callback")
		if e.cfg.Pause && in.Len() > 0 && !e.Draining.Load() {
			if err := s.Disable(actor.Read); err != nil {
				e.errorf("Session.Disable(Read) = %v", err)
			}
		}
	}
	testkit.Signal(e.Readable)
}

// WriteCallback is the body of the Write callback: unless callbacks are
// deferred or a Trigger may have run it, the output must be at most the
// largest write low watermark ever set.
func (e *End) WriteCallback(s *actor.Session) {
	e.Enter("write")
	if !e.cfg.Deferred && !e.WriteTriggered.Load() {
		if n, ceil := s.Output().Len(), e.WLowCeil.Load(); int64(n) > ceil {
			e.errorf("write callback with %d bytes of output, above the write low watermark (at most %d)", n, ceil)
		}
	}
}

// CheckEvent checks an event from the callback or from Events (counted
// in counts): no Connected; EOF at most once, with Reading and io.EOF; a
// write failure at most once, with Far's WriteFailure and only when
// Far's MayFailWrites; a timeout in one direction with ErrTimeout, a read
// timeout never with the input (in, seen from the event callback, or
// nil) at the read high watermark; and then what Far's FarEvent
// checks. Deferred events may come ORed together, with the first one's
// cause.
func (e *End) CheckEvent(ev actor.Event, err error, where string, counts *Counts, deferred bool, in *actor.Buffer) {
	if ev&actor.Connected != 0 {
		e.errorf("%s: %v on %s", where, ev, e.cfg.What)
	}
	if ev&actor.EOF != 0 {
		if n := counts.EOF.Add(1); n > 1 {
			e.errorf("%s: EOF reported %d times (%v, %v)", where, n, ev, err)
		}
		if ev&actor.Reading == 0 || !deferred && !errors.Is(err, io.EOF) {
			e.errorf("%s: %v with %v, want Reading|EOF with io.EOF", where, ev, err)
		}
	}
	if ev&actor.Error != 0 && ev&actor.Writing != 0 {
		if n := counts.WriteErr.Add(1); n > 1 {
			e.errorf("%s: write failure reported %d times (%v, %v)", where, n, ev, err)
		}
		if !deferred && !e.far.WriteFailure(err) {
			e.errorf("%s: %v with %v, want the failure of a broken stream", where, ev, err)
		}
		if !e.far.MayFailWrites() {
			e.errorf("%s: %v (%v) though nothing can have broken its output (far side: %v)", where, ev, err, e.far)
		}
	}
	if ev&actor.Timeout != 0 {
		// A read timeout does not run while the input is at the high
		// watermark; input cannot grow while it runs (progress disarms
		// it), so when it fires the input is below the highest mark.
		if b := e.Bound.Load(); in != nil && !deferred && ev&actor.Reading != 0 && b > 0 && int64(in.Len()) >= b {
			e.errorf("%s: %v with %d bytes of input, at the read high watermark (at most %d)", where, ev, in.Len(), b)
		}
		if !deferred && (ev&(actor.Reading|actor.Writing) == 0 || ev&(actor.Reading|actor.Writing) == actor.Reading|actor.Writing || !errors.Is(err, actor.ErrTimeout)) {
			e.errorf("%s: %v with %v, want one direction and ErrTimeout", where, ev, err)
		}
	}
	e.far.FarEvent(ev, err, where, counts, deferred)
}

// ClearTimeouts clears the timeouts for the final phase, checking the
// call with Expect.
func (e *End) ClearTimeouts() {
	err := e.BE.SetTimeouts(0, 0)
	e.Expect("SetTimeouts(0, 0)", err, true)
	if err == nil {
		e.RTO, e.WTO = 0, 0
	}
}

// EnableAll opens the bufferevent for the final phase: the read
// watermarks (0, high), reading and writing enabled, and in the callback
// style a Trigger of the read callback, which is not run again for what
// it left until more comes. Each call is checked with Expect.
func (e *End) EnableAll(high int) {
	e.SetWatermark(actor.Read, 0, high)
	e.EnableRead()
	e.Expect("Enable(Read|Write)", e.BE.Enable(actor.Read|actor.Write), true)
	if e.cfg.Style == Callback {
		e.NoteTrigger(actor.Read)
		e.Expect("Trigger(Read)", e.BE.Trigger(actor.Read, actor.TriggerIgnoreWatermarks), true)
	}
}

// FinishWrites half-closes the bufferevent with Flush(Write, Finished),
// checked with Expect.
func (e *End) FinishWrites() {
	e.HalfClosed.Store(true)
	e.Expect("Flush(Write, Finished)", e.BE.Flush(actor.Write, actor.Finished), true)
}

// AwaitEnd consumes the input in the run's style until the read side
// ended (Ended, or In's closing) or the bufferevent stopped, setting
// Complete when it took every byte before the end; pollEvents, if not
// nil, is called after each chunk from In. It ends the run with Fatalf if
// that takes more than the Wait.
func (e *End) AwaitEnd(pollEvents func()) {
	timer := time.NewTimer(e.cfg.Wait)
	defer timer.Stop()
	noEnd := func(what string) {
		e.fatalf("%s within %v (received %d, the far side wrote %d)", what, e.cfg.Wait, e.Received(), e.far.Wrote())
	}
	for {
		switch e.cfg.Style {
		case Poll:
			if !e.tryReadAll() {
				return // stopped
			}
			if testkit.Closed(e.Ended) {
				// Everything before the end came before it: what the
				// read after it found was the last.
				e.Complete = e.tryReadAll()
				return
			}
			select {
			case <-e.Readable:
			case <-e.Ended:
			case <-e.BE.Done():
				return
			case <-timer.C:
				noEnd("no end of the input")
			}
		case Callback:
			select {
			case <-e.Ended:
				e.Complete = true
				return
			case <-e.BE.Done():
				return
			case <-timer.C:
				noEnd("no end of the input")
			}
		case Channel:
			if e.In == nil {
				return
			}
			select {
			case p, ok := <-e.In:
				if !ok {
					e.inClosed()
					return
				}
				e.Record(p, "In")
			case <-timer.C:
				noEnd("In not closed")
			}
			if pollEvents != nil {
				pollEvents()
			}
		}
	}
}

// tryReadAll calls TryRead until the input is empty, recording what it
// reads; it returns false if the bufferevent stopped (an error other
// than ErrClosed, or ErrClosed while the model says Alive, is a failure).
func (e *End) tryReadAll() bool {
	p := make([]byte, 64<<10)
	for {
		n, err := e.BE.TryRead(p)
		if err != nil {
			if !errors.Is(err, actor.ErrClosed) || e.State.Load() == Alive {
				e.errorf("TryRead() = %d, %v", n, err)
			}
			return false
		}
		if n == 0 {
			return true
		}
		e.Record(p[:n], "TryRead")
	}
}

// ExpectClosed reports a failure unless err, the result of what on a
// closed bufferevent, is ErrClosed.
func (e *End) ExpectClosed(what string, err error) {
	if !errors.Is(err, actor.ErrClosed) {
		e.errorf("%s after Close = %v, want ErrClosed", what, err)
	}
}

// CheckClosed checks the methods both targets call on a closed
// bufferevent: each returns at once with ErrClosed (or no bytes), Do
// runs nothing, Err is not nil, and the settings getters (Watermark,
// Timeouts, MaxRead, MaxWrite) still report what was set.
func (e *End) CheckClosed() {
	be := e.BE
	e.ExpectClosed("Write", be.Write([]byte("x")))
	var buf actor.Buffer
	buf.WriteString("x")
	e.ExpectClosed("WriteBuffer", be.WriteBuffer(&buf))
	e.ExpectClosed("Send", be.Send(context.Background(), []byte("x")))
	n, err := be.TryRead(make([]byte, 8))
	e.ExpectClosed("TryRead", err)
	if n != 0 {
		e.errorf("TryRead after Close = %d bytes", n)
	}
	e.ExpectClosed("ReadBuffer", be.ReadBuffer(&buf))
	e.ExpectClosed("Do", be.Do(func(*actor.Session) { e.errorf("Do ran after Close") }))
	e.ExpectClosed("Enable", be.Enable(actor.Read))
	e.ExpectClosed("Flush", be.Flush(actor.Write, actor.Finished))
	e.ExpectClosed("SetTimeouts", be.SetTimeouts(time.Second, 0))
	if err := be.Err(); err == nil {
		e.errorf("Err() = nil after Close")
	}
	e.checkWatermarks()
	if rto, wto := be.Timeouts(); rto != e.RTO || wto != e.WTO {
		e.errorf("Timeouts() = %v, %v after Close, want %v, %v", rto, wto, e.RTO, e.WTO)
	}
	if mr, mw := be.MaxRead(), be.MaxWrite(); mr != e.MaxRead || mw != e.MaxWrite {
		e.errorf("MaxRead, MaxWrite = %d, %d after Close, want %d, %d", mr, mw, e.MaxRead, e.MaxWrite)
	}
}

// Delivery is what is known, once everything is closed, of one
// direction of a stream: what the writer's transport took (Written,
// final now), what its writes accepted, what the reader received and
// whether the reader read a clean end of stream, and whether the writer
// stayed open, never half-closed before the final phase (AliveAtFinish),
// and its output never failed.
type Delivery struct {
	Written       int64
	Accepted      int
	Received      int
	EOF           bool
	AliveAtFinish bool
	Failed        bool
}

// Check returns what is wrong with the delivery, one message each, or
// nil: the transport took no more than was accepted; the reader got no
// more than the transport took, and after a clean end of stream exactly
// that; and, when the writer stayed alive and its output never failed,
// everything accepted.
func (d Delivery) Check() []string {
	var bad []string
	if d.Written > int64(d.Accepted) {
		bad = append(bad, fmt.Sprintf("Written() = %d, more than the %d bytes accepted", d.Written, d.Accepted))
	}
	if int64(d.Received) > d.Written {
		bad = append(bad, fmt.Sprintf("the reader received %d bytes, more than the writer's Written() = %d", d.Received, d.Written))
	}
	if d.EOF && int64(d.Received) != d.Written {
		bad = append(bad, fmt.Sprintf("the reader read a clean EOF after %d bytes, but the writer's Written() = %d", d.Received, d.Written))
	}
	if d.EOF && d.AliveAtFinish && !d.Failed && d.Received != d.Accepted {
		bad = append(bad, fmt.Sprintf("the writer stayed open and its output never failed, but the reader read EOF after %d of the %d bytes it accepted (Written %d)",
			d.Received, d.Accepted, d.Written))
	}
	return bad
}
