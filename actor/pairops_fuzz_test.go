package actor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/opsmodel"
	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

// FuzzPairOps runs a program of operations on the two ends of a pair and
// checks it against a model of what the documentation promises. The fuzz
// input is decoded by poDecode: a two-byte header (how input is consumed,
// the options, whether there is a Base, how much a read callback takes
// and whether it then pauses reading) and up to poMaxOps operations of
// four bytes each, on either end: writes (Write, WriteBuffer, Send) of a
// known stream per direction, reads (TryRead or ReadBuffer, a Trigger of
// the read callback, or what In has ready), Enable and Disable,
// watermarks, flushes, Close, Free, a Drain in the background, per-read
// and per-write maxima, timeouts, a Free of the end or its partner from
// a callback, SetCallbacks again, triggers; arguments are small and may
// be invalid.
//
// After the program every end still open has its timeouts cleared,
// reading and writing enabled and its write side finished, and the test
// consumes until each such end has read its peer's end of stream; then
// the pair is closed and joined. Checked along the way and at the end:
//
//   - what an end receives is the peer's stream from offset 0, in order,
//     each byte once (checked as it arrives), exactly what the peer's
//     transport took (Written) once the end read EOF, and everything the
//     peer's Write, WriteBuffer and Send accepted when the peer stayed
//     open and its output never failed;
//   - a Drain that returns nil, on an end nobody else closed, wrote all
//     it had accepted before it began, and it says ErrOutputLost only if
//     the partner was closed;
//   - the input never holds more than the largest read high watermark in
//     force while reading was enabled (a pair caps each transfer by it);
//     the read callback sees at least the read low watermark, the write
//     callback at most the write low watermark;
//   - EOF at most once, only after the partner closed or half-closed, and
//     no input after it; a write failure at most once, only when the
//     partner is gone or the end half-closed; no Connected, no read error,
//     no timeout unless one was set; no callback after Close returned or
//     after the end's own callback called Session.Close; In is closed only
//     after the read side ended (Err says why) and no read callback runs
//     for an In user; a read timeout never fires with the input at the
//     high watermark;
//   - between operations Written never decreases, and an end nothing
//     could have ended has not stopped, has no Err, an open Failed and its
//     partner as Partner;
//   - every method's error matches its documentation for bad arguments,
//     a live end and a closed one, and after Close every method returns at
//     once with ErrClosed or its zero result while the settings getters
//     still report what was set;
//   - Close and the Base's Close join every goroutine of the iteration
//     (goleak), and the whole iteration ends within testkit.WaitTime, or
//     the test fails with every goroutine's stack.
func FuzzPairOps(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		prog := poDecode(data)
		r := &poRun{Run: testkit.Run{T: t}, prog: prog, ignore: goleak.IgnoreCurrent()}
		r.Watch(testkit.WaitTime, r.run, prog, func(doing string) string {
			if i := int(r.opIndex.Load()); doing == "the program" && i < len(prog.ops) {
				return fmt.Sprintf("operation %d, %v", i, prog.ops[i])
			}
			return doing
		})
	})
}

// The shape of a program.
const (
	poHeaderSize = 2
	poOpSize     = 4
	poMaxOps     = 64
	// poBudget is the most bytes one end writes in a program, so that a
	// program with the smallest read high watermark (16 bytes) still runs
	// in well under a second; most run in about a millisecond.
	poBudget = 64 << 10
	// poWait bounds each wait of a run for something the pair owes it
	// (an end of stream, a Drain's return); the watchdog's
	// testkit.WaitTime bounds the whole run.
	poWait = 5 * time.Second
)

// poKind is an operation of a program.
type poKind uint8

// The operations. Each takes up to three argument bytes a, b and c; see
// poOp.String for how they are decoded.
const (
	poWrite poKind = iota
	poRead
	poEnable
	poDisable
	poWatermark
	poFlush
	poClose
	poFree
	poDrain
	poMax
	poTimeouts
	poArmFree
	poTrigger
	poNumKinds
)

// poOp is one decoded operation on end 0 or 1.
type poOp struct {
	kind    poKind
	end     int
	a, b, c byte
}

// poProgram is a decoded fuzz input.
type poProgram struct {
	style   opsmodel.Style
	opts    actor.Option
	noBase  bool
	cbChunk int // the most a read callback takes in one call; 0: all
	// pause: a read callback that leaves input behind disables reading
	// through its Session, as le-proxy pauses a side, until the program
	// or the final phase enables it again.
	pause bool
	ops   []poOp
}

// poDecode decodes a fuzz input; every input is a valid program. Missing
// bytes read as zero, and what follows the last operation is ignored.
func poDecode(data []byte) poProgram {
	var h [poHeaderSize]byte
	copy(h[:], data)
	p := poProgram{style: opsmodel.DecodeStyle(h[0]), cbChunk: int(h[1]) * 16}
	if h[0]&0x04 != 0 {
		p.opts |= actor.DeferCallbacks
	}
	if h[0]&0x08 != 0 {
		p.opts |= actor.LargeStack
	}
	p.noBase = h[0]&0x10 != 0
	p.pause = h[0]&0x80 != 0
	data = data[min(len(data), poHeaderSize):]
	for len(data) > 0 && len(p.ops) < poMaxOps {
		var o [poOpSize]byte
		copy(o[:], data)
		data = data[min(len(data), poOpSize):]
		p.ops = append(p.ops, poOp{kind: poKind(o[0]>>1) % poNumKinds, end: int(o[0] & 1), a: o[1], b: o[2], c: o[3]})
	}
	return p
}

// String describes the program, for a failure's log.
func (p poProgram) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "style=%v opts=%#x noBase=%v cbChunk=%d pause=%v;", p.style, uint32(p.opts), p.noBase, p.cbChunk, p.pause)
	for _, op := range p.ops {
		sb.WriteString(" ")
		sb.WriteString(op.String())
		sb.WriteString(";")
	}
	return sb.String()
}

// String describes the operation with its decoded arguments.
func (op poOp) String() string {
	e := "ab"[op.end : op.end+1]
	switch op.kind {
	case poWrite:
		return fmt.Sprintf("%s.%s(%d)", e, [...]string{"Write", "WriteBuffer", "Send"}[op.c%3], poSize(op.a, op.b))
	case poRead:
		return fmt.Sprintf("%s.read(%d, opts %#x, ReadBuffer %v)", e, poSize(op.a, op.b), uint32(poTrigOpt(op.c)), op.c&0x40 != 0)
	case poEnable:
		return fmt.Sprintf("%s.Enable(%v)", e, opsmodel.Dir(op.a))
	case poDisable:
		return fmt.Sprintf("%s.Disable(%v)", e, opsmodel.Dir(op.a))
	case poWatermark:
		return fmt.Sprintf("%s.SetWatermark(%v, %d, %d)", e, opsmodel.Dir(op.a), opsmodel.Low(op.b), opsmodel.High(op.c))
	case poFlush:
		return fmt.Sprintf("%s.Flush(%v, %v)", e, opsmodel.Dir(op.a), opsmodel.Mode(op.b))
	case poClose:
		return e + ".Close()"
	case poFree:
		return e + ".Free()"
	case poDrain:
		return e + ".Drain()"
	case poMax:
		return fmt.Sprintf("%s.%s(%d)", e, [...]string{"SetMaxWrite", "SetMaxRead"}[op.a&1], opsmodel.MaxIO(op.b))
	case poTimeouts:
		return fmt.Sprintf("%s.SetTimeouts(%v, %v)", e, poTimeout(op.a), poTimeout(op.b))
	case poArmFree:
		if op.c&0x20 != 0 {
			return e + ".SetCallbacks(same)"
		}
		target := "itself"
		if op.b&1 != 0 {
			target = "partner"
		}
		return fmt.Sprintf("%s.free %s from %s callback", e, target, [...]string{"read", "write", "event"}[op.a%3])
	case poTrigger:
		return fmt.Sprintf("%s.Trigger(%v, %#x)", e, opsmodel.Dir(op.a), uint32(poTrigOpt(op.b)))
	}
	return fmt.Sprintf("%s.op%d", e, op.kind)
}

// The argument decoders.

// poSize is a byte count up to 49149, most of them below 16 KiB.
func poSize(a, b byte) int {
	n := int(a) | int(b&0x3f)<<8
	if b&0x40 != 0 {
		n *= 3
	}
	return n
}

// poTimeout is a timeout: none, 1, 3 or 10 ms, or a negative one.
func poTimeout(x byte) time.Duration {
	return [...]time.Duration{0, time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, -time.Millisecond}[x%5]
}

// poTrigOpts are the trigger options a program picks from, two invalid.
var poTrigOpts = [...]actor.TriggerOption{
	0, actor.TriggerIgnoreWatermarks, actor.TriggerDefer,
	actor.TriggerIgnoreWatermarks | actor.TriggerDefer, 1, 1 << 20,
}

// poTrigOpt picks a trigger option.
func poTrigOpt(x byte) actor.TriggerOption { return poTrigOpts[int(x)%len(poTrigOpts)] }

// Which callback frees (poArmFree), and whom.
const (
	poFreeRead int32 = 1 + iota
	poFreeWrite
	poFreeEvent
	poFreePartner int32 = 1 << 4
)

// poRun is one run of a program. Its methods run on the run goroutine,
// but for the callbacks' (poEnd.onRead and the others), which run on the
// actors.
type poRun struct {
	testkit.Run
	prog   poProgram
	ignore goleak.Option // the goroutines from before the run
	base   *actor.Base
	ends   [2]*poEnd
	drains sync.WaitGroup
	// opIndex is which operation of the program the run goroutine runs,
	// for the watchdog.
	opIndex atomic.Int32
}

// poEnd is one end of the pair: opsmodel's model of it, and what the
// model asks of its partner (it is the End's Far). The plain fields are
// the run goroutine's; arm is shared with the callbacks.
type poEnd struct {
	opsmodel.End
	r    *poRun
	id   int
	peer *poEnd
	arm  atomic.Int32 // poFree* bits: which callback frees, and whom
}

// run runs the program, the final phase and the checks, and closes
// everything even when it ends early.
func (r *poRun) run() {
	defer r.Recover()
	r.SetDoing("setup")
	defer r.cleanup()
	r.setup()
	r.SetDoing("the program")
	for i, op := range r.prog.ops {
		r.opIndex.Store(int32(i))
		r.step(op)
		for _, e := range r.ends {
			e.CheckBound(e.BE.InputLen(), "InputLen()")
			e.checkLive()
			e.PollEvents(nil)
		}
	}
	r.finish()
}

// setup makes the pair, sets the callbacks and, for the channel style,
// asks for In and Events.
func (r *poRun) setup() {
	if !r.prog.noBase {
		r.base = actor.NewBase()
	}
	a, b, err := actor.NewPair(r.base, r.prog.opts)
	if err != nil {
		r.Fatalf("NewPair() = %v", err)
	}
	for i, be := range []*actor.Bufferevent{a, b} {
		e := &poEnd{r: r, id: i}
		e.Init(be, opsmodel.Config{
			Style:     r.prog.style,
			Deferred:  r.prog.opts&actor.DeferCallbacks != 0,
			CBChunk:   r.prog.cbChunk,
			Pause:     r.prog.pause,
			Stream:    i,
			FarStream: 1 - i,
			Budget:    poBudget,
			Wait:      poWait,
			What:      "a pair",
			Prefix:    fmt.Sprintf("end %d: ", i),
		}, &r.Run, e, &r.drains, actor.PairMaxIO, actor.PairMaxIO)
		r.ends[i] = e
	}
	r.ends[0].peer, r.ends[1].peer = r.ends[1], r.ends[0]
	for _, e := range r.ends {
		e.BE.SetCallbacks(actor.Callbacks{Read: e.onRead, Write: e.onWrite, Event: e.onEvent})
		if r.prog.style == opsmodel.Channel {
			e.EnableRead()
			e.In = e.BE.In()
			e.Evs = e.BE.Events()
		}
	}
}

// cleanup closes both ends and the Base and joins the Drains: after a
// finished run it finds everything closed already.
func (r *poRun) cleanup() {
	r.SetDoing("cleanup")
	for _, e := range r.ends {
		if e != nil {
			e.OtherClose.Store(true) // a Drain still waiting is cut short
		}
	}
	if r.base != nil {
		r.base.Close()
	}
	for _, e := range r.ends {
		if e != nil {
			e.BE.Close()
			e.State.Store(opsmodel.Closed)
		}
	}
	r.drains.Wait()
}

// step runs one operation.
func (r *poRun) step(op poOp) {
	e := r.ends[op.end]
	switch op.kind {
	case poWrite:
		e.WriteNext(int(op.c%3), poSize(op.a, op.b), op.c&4 != 0)
	case poRead:
		e.Consume(poSize(op.a, op.b), op.c&0x40 != 0, poTrigOpt(op.c), int(op.a%4)+1)
	case poEnable:
		e.Enable(opsmodel.Dir(op.a))
	case poDisable:
		e.Disable(opsmodel.Dir(op.a))
	case poWatermark:
		e.SetWatermark(opsmodel.Dir(op.a), opsmodel.Low(op.b), opsmodel.High(op.c))
	case poFlush:
		e.Flush(opsmodel.Dir(op.a), opsmodel.Mode(op.b))
	case poClose:
		e.Close(" (a pipe closes cleanly)")
		if p := e.peer.BE.Partner(); p != nil {
			r.Errorf("end %d: Partner() = %p after its partner was closed, want nil", e.peer.id, p)
		}
	case poFree:
		e.MakeUncertain()
		e.OtherClose.Store(true)
		e.BE.Free()
		e.FreedHere = true
	case poDrain:
		e.Drain()
	case poMax:
		e.SetMax(op.a&1 != 0, opsmodel.MaxIO(op.b))
	case poTimeouts:
		e.SetTimeouts(poTimeout(op.a), poTimeout(op.b))
	case poArmFree:
		if op.c&0x20 != 0 {
			// The same callbacks again: a no-op for the model, but a
			// call that may race with the end's stop.
			e.BE.SetCallbacks(actor.Callbacks{Read: e.onRead, Write: e.onWrite, Event: e.onEvent})
			return
		}
		target := e
		bits := 1 + int32(op.a%3)
		if op.b&1 != 0 {
			target = e.peer
			bits |= poFreePartner
		}
		target.MakeUncertain()
		target.OtherClose.Store(true)
		e.arm.Store(bits)
	case poTrigger:
		d, opts := opsmodel.Dir(op.a), poTrigOpt(op.b)
		e.NoteTrigger(d)
		e.Expect("Trigger", e.BE.Trigger(d, opts), opsmodel.ValidDir(d) && opsmodel.ValidTrig(opts))
	}
}

// String describes the partner's state, for the model's messages (Far).
func (e *poEnd) String() string { return fmt.Sprintf("partner state %d", e.peer.State.Load()) }

// MayFailWrites reports whether a write failure is allowed: the partner
// or the end itself may be gone, or the end asked for its half-close
// (Far).
func (e *poEnd) MayFailWrites() bool {
	return e.peer.State.Load() != opsmodel.Alive || e.HalfClosed.Load() || e.State.Load() != opsmodel.Alive
}

// WriteFailure reports whether err is a pair's write failure: a broken
// pipe (Far).
func (e *poEnd) WriteFailure(err error) bool { return errors.Is(err, syscall.EPIPE) }

// DrainFailure reports whether a Drain may fail with err: only with
// ErrOutputLost, once the partner may be closed (Far).
func (e *poEnd) DrainFailure(err error) bool {
	return errors.Is(err, actor.ErrOutputLost) && e.peer.State.Load() != opsmodel.Alive
}

// Wrote returns what the partner's transport took (Far).
func (e *poEnd) Wrote() int64 { return e.peer.BE.Written() }

// FarEvent checks what of an event depends on the partner (Far): EOF only
// after the partner closed or half-closed, no read error ever, no timeout
// unless one was set.
func (e *poEnd) FarEvent(ev actor.Event, err error, where string, _ *opsmodel.Counts, deferred bool) {
	r := e.r
	if ev&actor.EOF != 0 {
		if p := e.peer; p.State.Load() == opsmodel.Alive && !p.HalfClosed.Load() {
			r.Errorf("end %d: %s: %v though its partner is open and did not half-close", e.id, where, ev)
		}
	}
	if opsmodel.ReadError(ev, deferred) {
		r.Errorf("end %d: %s: read error %v: %v", e.id, where, ev, err)
	}
	if ev&actor.Timeout != 0 && !e.TimeoutsSet.Load() {
		r.Errorf("end %d: %s: %v but no timeout was set", e.id, where, ev)
	}
}

// checkLive checks what the getters say between operations: Written
// never decreases, and an end that nothing could have closed, ended or
// failed (it and its partner open, neither half-closed) has not stopped,
// has no Err, an open Failed and its partner as Partner.
func (e *poEnd) checkLive() {
	r, p := e.r, e.peer
	e.CheckWritten()
	if e.State.Load() != opsmodel.Alive || p.State.Load() != opsmodel.Alive || e.HalfClosed.Load() || p.HalfClosed.Load() {
		return
	}
	if testkit.Closed(e.BE.Done()) {
		r.Errorf("end %d stopped on its own", e.id)
	}
	if err := e.BE.Err(); err != nil {
		r.Errorf("end %d: Err() = %v though nothing ended its stream", e.id, err)
	}
	if testkit.Closed(e.BE.Failed()) {
		r.Errorf("end %d: Failed() closed though its partner is open and it did not half-close", e.id)
	}
	if got := e.BE.Partner(); got != p.BE {
		r.Errorf("end %d: Partner() = %p, want its partner %p", e.id, got, p.BE)
	}
}

// onRead is the Read callback.
func (e *poEnd) onRead(s *actor.Session) {
	e.ReadCallback(s)
	e.maybeFree(s, poFreeRead)
}

// onWrite is the Write callback.
func (e *poEnd) onWrite(s *actor.Session) {
	e.WriteCallback(s)
	e.maybeFree(s, poFreeWrite)
}

// onEvent is the Event callback: an EOF ends the read side.
func (e *poEnd) onEvent(s *actor.Session, ev actor.Event, err error) {
	e.Enter("event")
	e.CheckEvent(ev, err, "event callback", &e.CBCounts, e.Deferred(), s.Input())
	if ev&actor.EOF != 0 {
		if e.r.prog.style == opsmodel.Callback {
			e.TakeRest(s.Input(), "EOF callback")
		}
		if e.r.prog.style != opsmodel.Channel {
			e.MarkEnded()
		}
	}
	testkit.Signal(e.Readable)
	e.maybeFree(s, poFreeEvent)
}

// maybeFree frees the end or its partner if the program armed the
// callback of kind to.
func (e *poEnd) maybeFree(s *actor.Session, kind int32) {
	arm := e.arm.Load()
	if arm&^poFreePartner != kind || !e.arm.CompareAndSwap(arm, 0) {
		return
	}
	if arm&poFreePartner != 0 {
		e.peer.BE.Free()
		return
	}
	s.Close()
	e.SelfFreed.Store(true)
}

// finish delivers what is deliverable: every end still open gets its
// timeouts cleared, reading and writing enabled and its write side
// finished, and the test consumes until each has read its peer's EOF (or
// stopped); then it joins the Drains, closes everything and checks.
func (r *poRun) finish() {
	var open []*poEnd
	for _, e := range r.ends {
		if e.State.Load() != opsmodel.Closed {
			open = append(open, e)
		}
	}
	for _, e := range open {
		r.SetDoing("final phase: enabling end %d", e.id)
		// Bytes written after an earlier half-close may be lost without
		// a failure to show for it until a write is tried; only the
		// final half-close below proves that all came before it.
		e.AliveAtFinish = e.State.Load() == opsmodel.Alive && !e.HalfClosed.Load()
		e.Draining.Store(true)
		// A read callback running now may have read draining before it
		// was set and pause reading after the Enable below: wait for it.
		if err := e.BE.Do(func(*actor.Session) {}); err != nil {
			e.Expect("Do", err, true)
		}
		e.ClearTimeouts()
		e.EnableAll(e.CurHigh)
	}
	for _, e := range open {
		e.FinishWrites()
	}
	for _, e := range open {
		r.SetDoing("final phase: awaiting the end of end %d's input", e.id)
		e.AwaitEnd(func() { e.PollEvents(nil) })
	}
	r.SetDoing("final phase: joining the Drains")
	if !opsmodel.JoinDrains(&r.drains, poWait) {
		r.Fatalf("a Drain did not return within %v after both ends read EOF", poWait)
	}
	var failed [2]bool
	for i, e := range r.ends {
		failed[i] = testkit.Closed(e.BE.Failed())
		e.PollEvents(nil)
	}
	r.SetDoing("final phase: closing")
	r.closeAll()
	for _, e := range r.ends {
		e.checkClosed()
	}
	for i, s := range r.ends {
		s.checkDelivery(failed[i])
	}
	r.SetDoing("final phase: goroutines")
	if err := goleak.Find(r.ignore); err != nil {
		r.Errorf("goroutines left after the pair was closed: %v", err)
	}
}

// closeAll closes the Base, whose Close joins both ends, or without a
// Base each end.
func (r *poRun) closeAll() {
	if r.base != nil {
		if err := r.base.Close(); err != nil {
			r.Errorf("Base.Close() = %v, want nil", err)
		}
		for _, e := range r.ends {
			if !testkit.Closed(e.BE.Done()) {
				r.Errorf("end %d: Done() not closed after Base.Close returned", e.id)
			}
		}
	}
	for _, e := range r.ends {
		if err := e.BE.Close(); err != nil {
			r.Errorf("end %d: Close() = %v, want nil", e.id, err)
		}
		e.State.Store(opsmodel.Closed)
	}
}

// checkClosed checks a closed end: every method returns at once with
// ErrClosed or its zero result, the channels are closed, and the settings
// getters report what was set.
func (e *poEnd) checkClosed() {
	r := e.r
	r.SetDoing("final phase: methods of closed end %d", e.id)
	e.CheckClosed()
	e.ExpectClosed("Disable", e.BE.Disable(actor.Write))
	e.ExpectClosed("SetWatermark", e.BE.SetWatermark(actor.Read, 1, 2))
	e.ExpectClosed("Trigger", e.BE.Trigger(actor.Read|actor.Write, 0))
	e.ExpectClosed("SetMaxRead", e.BE.SetMaxRead(1))
	e.ExpectClosed("SetMaxWrite", e.BE.SetMaxWrite(1))
	// Close's result, or the loss an earlier Drain reported.
	if err := e.BE.Drain(context.Background()); err != nil && !errors.Is(err, actor.ErrOutputLost) {
		r.Errorf("end %d: Drain after Close = %v, want Close's nil", e.id, err)
	}
	if err := e.BE.Close(); err != nil {
		r.Errorf("end %d: second Close = %v, want nil", e.id, err)
	}
	if d, in, out, p, tr := e.BE.Enabled(), e.BE.InputLen(), e.BE.OutputLen(), e.BE.Partner(), e.BE.Transport(); d != 0 || in != 0 || out != 0 || p != nil || tr != nil {
		r.Errorf("end %d: after Close Enabled, InputLen, OutputLen, Partner, Transport = %v, %d, %d, %v, %v; want zeros", e.id, d, in, out, p, tr)
	}
	if cbs := e.BE.Callbacks(); cbs.Read != nil || cbs.Write != nil || cbs.Event != nil {
		r.Errorf("end %d: Callbacks() not the zero value after Close", e.id)
	}
	if !testkit.Closed(e.BE.Failed()) || !testkit.Closed(e.BE.Done()) {
		r.Errorf("end %d: Failed or Done not closed after Close", e.id)
	}
	if e.In != nil {
		e.drainClosedIn()
	}
	select {
	case _, ok := <-e.BE.In():
		if ok {
			r.Errorf("end %d: In delivered after Close", e.id)
		}
	default:
		r.Errorf("end %d: In not closed after Close", e.id)
	}
	evs := e.BE.Events()
	for range eventBufferMax + 1 {
		select {
		case ev, ok := <-evs:
			if !ok {
				evs = nil
			} else if e.Evs != nil {
				e.CheckEvent(ev.Event, ev.Err, "Events", &e.ChCounts, false, nil)
			} else {
				r.Errorf("end %d: Events delivered %v after Close to a first caller", e.id, ev)
			}
		default:
			r.Errorf("end %d: Events not closed after Close", e.id)
			evs = nil
		}
		if evs == nil {
			break
		}
	}
}

// eventBufferMax bounds how many events a closed Events channel may still
// hold: its capacity.
const eventBufferMax = 16

// drainClosedIn receives what In still holds after Close, which may not
// be more than it held; it must be closed.
func (e *poEnd) drainClosedIn() {
	for {
		select {
		case p, ok := <-e.In:
			if !ok {
				e.In = nil
				return
			}
			e.Record(p, "In after Close")
		default:
			e.r.Errorf("end %d: In not closed after Close", e.id)
			return
		}
	}
}

// checkDelivery checks, once both ends are closed, what the peer of e
// received of e's stream against what e's transport took (Written,
// final now) and what e's writes accepted.
func (e *poEnd) checkDelivery(failed bool) {
	p := e.peer
	d := opsmodel.Delivery{
		Written: e.BE.Written(), Accepted: e.Sent, Received: p.Received(),
		EOF: p.Complete, AliveAtFinish: e.AliveAtFinish, Failed: failed,
	}
	for _, bad := range d.Check() {
		e.r.Errorf("end %d writing to end %d: %s", e.id, p.id, bad)
	}
}
