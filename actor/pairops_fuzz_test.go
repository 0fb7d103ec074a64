package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
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

// poStyle is how a program consumes input: one style per run, since the
// Read callback and In are two views of the same delivery.
type poStyle uint8

// The consumption styles.
const (
	poPoll     poStyle = iota // the test calls TryRead; the Read callback only signals
	poCallback                // the Read callback takes the input
	poChannel                 // the test receives from In
)

// String returns the style's name.
func (s poStyle) String() string {
	return [...]string{"poll", "callback", "channel"}[s]
}

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
	style   poStyle
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
	p := poProgram{style: poStyle(h[0] & 3 % 3), cbChunk: int(h[1]) * 16}
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
		return fmt.Sprintf("%s.Enable(%v)", e, poDir(op.a))
	case poDisable:
		return fmt.Sprintf("%s.Disable(%v)", e, poDir(op.a))
	case poWatermark:
		return fmt.Sprintf("%s.SetWatermark(%v, %d, %d)", e, poDir(op.a), poLow(op.b), poHigh(op.c))
	case poFlush:
		return fmt.Sprintf("%s.Flush(%v, %v)", e, poDir(op.a), poMode(op.b))
	case poClose:
		return e + ".Close()"
	case poFree:
		return e + ".Free()"
	case poDrain:
		return e + ".Drain()"
	case poMax:
		return fmt.Sprintf("%s.%s(%d)", e, [...]string{"SetMaxWrite", "SetMaxRead"}[op.a&1], poMaxIO(op.b))
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
		return fmt.Sprintf("%s.Trigger(%v, %#x)", e, poDir(op.a), uint32(poTrigOpt(op.b)))
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

// poDir is a direction, valid or not (0 and bits beyond Read|Write).
func poDir(a byte) actor.Dir { return actor.Dir(a & 7) }

// poLow is a low watermark, from -512 to 508.
func poLow(b byte) int { return int(int8(b)) * 4 }

// poHigh is a high watermark, from -2048 to 2032.
func poHigh(c byte) int { return int(int8(c)) * 16 }

// poMode is a flush mode from -3 to 3: 0 to 2 are valid.
func poMode(b byte) actor.FlushMode { return actor.FlushMode(int8(b) % 4) }

// poMaxIO is a per-read or per-write maximum from -8192 to 8128.
func poMaxIO(b byte) int { return int(int8(b)) * 64 }

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

// poValidDir reports whether d is Read, Write or both.
func poValidDir(d actor.Dir) bool { return d != 0 && d&^(actor.Read|actor.Write) == 0 }

// poValidTrig reports whether opts holds only known trigger options.
func poValidTrig(opts actor.TriggerOption) bool {
	return opts&^(actor.TriggerIgnoreWatermarks|actor.TriggerDefer) == 0
}

// The model's view of whether an end is open.
const (
	poAlive     int32 = iota // nothing closed it, nor can anything the program did
	poUncertain              // Free, Drain, or an armed Free in a callback: it may stop at any time
	poClosed                 // Close returned
)

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

// poEnd is one end of the pair and the model of it. Its plain fields are
// the run goroutine's; the atomics are shared with the callbacks,
// and the model updates them before it calls the method they describe
// (a bound is raised, a floor lowered, a state made less certain), so a
// callback never holds the pair to a promise stricter than the one in
// force.
type poEnd struct {
	r    *poRun
	id   int
	be   *actor.Bufferevent
	peer *poEnd
	in   <-chan []byte          // In, for the channel style; nil once closed
	evs  <-chan actor.EventInfo // Events, for the channel style

	sent            int   // bytes Write, WriteBuffer and Send accepted
	written         int64 // Written() when last looked at
	readOn          bool  // reading may be enabled
	curLow, curHigh int   // the read watermarks last set
	wLow, wHigh     int   // the write watermarks last set
	rto, wto        time.Duration
	maxRead         int
	maxWrite        int
	aliveAtFinish   bool // open, never closing and not half-closed when the program ended
	complete        bool // the end read its peer's EOF and took every byte before it
	drainStarted    bool

	state      atomic.Int32
	halfClosed atomic.Bool // a Flush(Write, Finished) or Drain was asked
	otherClose atomic.Bool // something besides its own Drain may close it
	// bound is the most the input may hold: the largest read high
	// watermark in force while reading was enabled; -1 for none.
	bound atomic.Int64
	// lowFloor is the least read low watermark in force while reading
	// was enabled (MaxInt64 before it ever was): the read callback sees
	// at least that much input.
	lowFloor       atomic.Int64
	wLowCeil       atomic.Int64 // the largest write low watermark ever set
	readTriggered  atomic.Bool
	writeTriggered atomic.Bool
	timeoutsSet    atomic.Bool
	draining       atomic.Bool // the final phase: the read callback takes everything
	closedRet      atomic.Bool
	selfFreed      atomic.Bool
	// freedHere: the program's goroutine called Free (or Close) on the
	// end, so every later call it makes must fail with ErrClosed.
	freedHere bool
	arm       atomic.Int32 // poFree* bits: which callback frees, and whom
	readable  chan struct{}
	ended     chan struct{} // closed at the end of the read side (EOF)
	endOnce   sync.Once
	cbCounts  poCounts // events seen by the event callback
	chCounts  poCounts // events seen on Events

	mu    sync.Mutex // guards following
	got   int        // bytes received, checked against the peer's stream
	atEOF bool       // EOF was reported: nothing more may arrive
}

// poCounts counts the events that may come at most once.
type poCounts struct {
	eof, writeErr atomic.Int32
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
			e.checkBound(e.be.InputLen(), "InputLen()")
			e.checkLive()
			e.pollEvents()
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
		e := &poEnd{
			r: r, id: i, be: be,
			maxRead: actor.PairMaxIO, maxWrite: actor.PairMaxIO,
			readable: make(chan struct{}, 1),
			ended:    make(chan struct{}),
		}
		e.bound.Store(0) // reading starts disabled: nothing arrives
		e.lowFloor.Store(math.MaxInt64)
		r.ends[i] = e
	}
	r.ends[0].peer, r.ends[1].peer = r.ends[1], r.ends[0]
	for _, e := range r.ends {
		e.be.SetCallbacks(actor.Callbacks{Read: e.onRead, Write: e.onWrite, Event: e.onEvent})
		if r.prog.style == poChannel {
			e.enableRead()
			e.in = e.be.In()
			e.evs = e.be.Events()
		}
	}
}

// cleanup closes both ends and the Base and joins the Drains: after a
// finished run it finds everything closed already.
func (r *poRun) cleanup() {
	r.SetDoing("cleanup")
	for _, e := range r.ends {
		if e != nil {
			e.otherClose.Store(true) // a Drain still waiting is cut short
		}
	}
	if r.base != nil {
		r.base.Close()
	}
	for _, e := range r.ends {
		if e != nil {
			e.be.Close()
			e.closedRet.Store(true)
		}
	}
	r.drains.Wait()
}

// step runs one operation.
func (r *poRun) step(op poOp) {
	e := r.ends[op.end]
	switch op.kind {
	case poWrite:
		e.write(op)
	case poRead:
		e.read(op)
	case poEnable:
		d := poDir(op.a)
		if poValidDir(d) && d&actor.Read != 0 {
			e.enableRead()
		}
		e.expect("Enable", e.be.Enable(d), poValidDir(d))
	case poDisable:
		d := poDir(op.a)
		err := e.be.Disable(d)
		e.expect("Disable", err, poValidDir(d))
		if err == nil {
			if d&actor.Read != 0 {
				e.readOn = false
			}
			// Only this goroutine enables, so the bits stay off.
			if got := e.be.Enabled(); got&d != 0 {
				r.Errorf("end %d: Enabled() = %v right after Disable(%v)", e.id, got, d)
			}
		}
	case poWatermark:
		e.setWatermark(poDir(op.a), poLow(op.b), poHigh(op.c))
	case poFlush:
		d, mode := poDir(op.a), poMode(op.b)
		valid := poValidDir(d) && mode >= actor.Normal && mode <= actor.Finished
		if valid && d&actor.Write != 0 && mode == actor.Finished {
			e.halfClosed.Store(true)
		}
		e.expect("Flush", e.be.Flush(d, mode), valid)
	case poClose:
		e.makeUncertain()
		e.otherClose.Store(true)
		if err := e.be.Close(); err != nil {
			r.Errorf("end %d: Close() = %v, want nil (a pipe closes cleanly)", e.id, err)
		}
		e.closedRet.Store(true)
		e.state.Store(poClosed)
		if !testkit.Closed(e.be.Done()) {
			r.Errorf("end %d: Done() not closed after Close returned", e.id)
		}
		if p := e.peer.be.Partner(); p != nil {
			r.Errorf("end %d: Partner() = %p after its partner was closed, want nil", e.peer.id, p)
		}
	case poFree:
		e.makeUncertain()
		e.otherClose.Store(true)
		e.be.Free()
		e.freedHere = true
	case poDrain:
		e.drain()
	case poMax:
		e.setMax(op.a&1 != 0, poMaxIO(op.b))
	case poTimeouts:
		rto, wto := poTimeout(op.a), poTimeout(op.b)
		valid := rto >= 0 && wto >= 0
		if valid && (rto > 0 || wto > 0) {
			e.timeoutsSet.Store(true)
		}
		err := e.be.SetTimeouts(rto, wto)
		e.expect("SetTimeouts", err, valid)
		if err == nil {
			e.rto, e.wto = rto, wto
		}
	case poArmFree:
		if op.c&0x20 != 0 {
			// The same callbacks again: a no-op for the model, but a
			// call that may race with the end's stop.
			e.be.SetCallbacks(actor.Callbacks{Read: e.onRead, Write: e.onWrite, Event: e.onEvent})
			return
		}
		target := e
		bits := 1 + int32(op.a%3)
		if op.b&1 != 0 {
			target = e.peer
			bits |= poFreePartner
		}
		target.makeUncertain()
		target.otherClose.Store(true)
		e.arm.Store(bits)
	case poTrigger:
		d, opts := poDir(op.a), poTrigOpt(op.b)
		e.noteTrigger(d)
		e.expect("Trigger", e.be.Trigger(d, opts), poValidDir(d) && poValidTrig(opts))
	}
}

// makeUncertain marks a live end as one that may stop at any time.
func (e *poEnd) makeUncertain() { e.state.CompareAndSwap(poAlive, poUncertain) }

// noteTrigger records that the callbacks of d may run on demand, outside
// the watermark promises.
func (e *poEnd) noteTrigger(d actor.Dir) {
	if d&actor.Read != 0 {
		e.readTriggered.Store(true)
	}
	if d&actor.Write != 0 {
		e.writeTriggered.Store(true)
	}
}

// mayFailWrites reports whether a write failure is allowed: the partner
// may be gone, or the end asked for its half-close.
func (e *poEnd) mayFailWrites() bool {
	return e.peer.state.Load() != poAlive || e.halfClosed.Load() || e.state.Load() != poAlive
}

// expect checks the error of a call that changes state: ErrInvalid for
// bad arguments (ErrClosed too once the end may be closed, as a closed
// check may come first), nil on a live end, nil or ErrClosed on one that
// may have stopped, ErrClosed on a closed one or after the program's own
// Free.
func (e *poEnd) expect(what string, err error, valid bool) {
	st := e.state.Load()
	ok := false
	switch {
	case !valid:
		ok = errors.Is(err, actor.ErrInvalid) || st != poAlive && errors.Is(err, actor.ErrClosed)
	case e.freedHere:
		ok = errors.Is(err, actor.ErrClosed)
	case st == poAlive:
		ok = err == nil
	case st == poUncertain:
		ok = err == nil || errors.Is(err, actor.ErrClosed)
	default:
		ok = errors.Is(err, actor.ErrClosed)
	}
	if !ok {
		e.r.Errorf("end %d (state %d): %s = %v (arguments valid: %v)", e.id, st, what, err, valid)
	}
}

// expectWrite checks the error of a Write, WriteBuffer or Send: as
// expect, but a write may also fail as a broken pipe once the output
// may have failed, and a Send with its context's error; after the
// program's own Free only with ErrClosed.
func (e *poEnd) expectWrite(what string, err error, ctxErr bool) {
	st := e.state.Load()
	ok := err == nil && st != poClosed ||
		errors.Is(err, actor.ErrClosed) && st != poAlive ||
		errors.Is(err, syscall.EPIPE) && e.mayFailWrites() ||
		ctxErr && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if e.freedHere {
		ok = errors.Is(err, actor.ErrClosed)
	}
	if !ok {
		e.r.Errorf("end %d (state %d, half-closed %v, partner state %d): %s = %v",
			e.id, st, e.halfClosed.Load(), e.peer.state.Load(), what, err)
	}
}

// write writes the next bytes of the end's stream with Write, WriteBuffer
// or Send.
func (e *poEnd) write(op poOp) {
	n := min(poSize(op.a, op.b), poBudget-e.sent)
	var err error
	switch op.c % 3 {
	case 0:
		err = e.be.Write(testkit.UniqueAt(e.id, e.sent, n))
		e.expectWrite("Write", err, false)
	case 1:
		var buf actor.Buffer
		buf.Write(testkit.UniqueAt(e.id, e.sent, n))
		err = e.be.WriteBuffer(&buf)
		e.expectWrite("WriteBuffer", err, false)
		if want := map[bool]int{true: 0, false: n}[err == nil]; buf.Len() != want {
			e.r.Errorf("end %d: WriteBuffer(%d bytes) = %v left %d bytes in the buffer, want %d", e.id, n, err, buf.Len(), want)
		}
		buf.Reset()
	case 2:
		// One piece, so that it is taken whole or not at all.
		high := e.wHigh
		if high == 0 {
			high = actor.DefaultChannelHighWatermark
		}
		n = min(n, high)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if op.c&4 != 0 {
			cancel() // Send may still take it if the actor is ready
		}
		err = e.be.Send(ctx, testkit.UniqueAt(e.id, e.sent, n))
		cancel()
		e.expectWrite("Send", err, true)
	}
	if err == nil {
		e.sent += n
	}
}

// read consumes input in the run's style: TryRead, a Trigger of the read
// callback, or what In has ready.
func (e *poEnd) read(op poOp) {
	switch e.r.prog.style {
	case poPoll:
		if op.c&0x40 != 0 {
			var buf actor.Buffer
			err := e.be.ReadBuffer(&buf)
			e.expect("ReadBuffer", err, true)
			if err != nil && buf.Len() != 0 {
				e.r.Errorf("end %d: ReadBuffer() = %v with %d bytes", e.id, err, buf.Len())
			}
			e.take(&buf, buf.Len(), "ReadBuffer")
			return
		}
		p := make([]byte, poSize(op.a, op.b))
		n, err := e.be.TryRead(p)
		e.expect("TryRead", err, true)
		if err != nil && n != 0 {
			e.r.Errorf("end %d: TryRead() = %d, %v: bytes with an error", e.id, n, err)
		}
		e.record(p[:n], "TryRead")
	case poCallback:
		opts := poTrigOpt(op.c)
		e.noteTrigger(actor.Read)
		e.expect("Trigger(Read)", e.be.Trigger(actor.Read, opts), poValidTrig(opts))
	case poChannel:
		for range int(op.a%4) + 1 {
			if !e.recvReady() {
				return
			}
		}
	}
}

// recvReady takes one chunk In has ready, if any, and reports whether it
// took one.
func (e *poEnd) recvReady() bool {
	if e.in == nil {
		return false
	}
	select {
	case p, ok := <-e.in:
		if !ok {
			e.inClosed()
			return false
		}
		e.record(p, "In")
		return true
	default:
		return false
	}
}

// inClosed takes the closing of In: for a live end it means the end of
// the read side, after every byte before it was delivered. Err then
// gives the stream's first cause: io.EOF, or the write failure that came
// before it when the partner closed.
func (e *poEnd) inClosed() {
	e.in = nil
	if e.state.Load() != poAlive {
		return
	}
	if err := e.be.Err(); err == nil || errors.Is(err, actor.ErrClosed) {
		e.r.Errorf("end %d: In closed on a live end with Err() = %v, want the stream's end", e.id, err)
		return
	}
	e.complete = true
	e.markEnded()
}

// pollEvents takes the events Events has ready (channel style).
func (e *poEnd) pollEvents() {
	for e.evs != nil {
		select {
		case ev, ok := <-e.evs:
			if !ok {
				e.evs = nil
				return
			}
			e.checkEvent(ev.Event, ev.Err, "Events", &e.chCounts, false, nil)
		default:
			return
		}
	}
}

// checkLive checks what the getters say between operations: Written
// never decreases, and an end that nothing could have closed, ended or
// failed (it and its partner open, neither half-closed) has not stopped,
// has no Err, an open Failed and its partner as Partner.
func (e *poEnd) checkLive() {
	r, p := e.r, e.peer
	if w := e.be.Written(); w < e.written {
		r.Errorf("end %d: Written() went from %d down to %d", e.id, e.written, w)
	} else {
		e.written = w
	}
	if e.state.Load() != poAlive || p.state.Load() != poAlive || e.halfClosed.Load() || p.halfClosed.Load() {
		return
	}
	if testkit.Closed(e.be.Done()) {
		r.Errorf("end %d stopped on its own", e.id)
	}
	if err := e.be.Err(); err != nil {
		r.Errorf("end %d: Err() = %v though nothing ended its stream", e.id, err)
	}
	if testkit.Closed(e.be.Failed()) {
		r.Errorf("end %d: Failed() closed though its partner is open and it did not half-close", e.id)
	}
	if got := e.be.Partner(); got != p.be {
		r.Errorf("end %d: Partner() = %p, want its partner %p", e.id, got, p.be)
	}
}

// enableRead updates the model before reading is enabled: the input may
// fill to the read high watermark in force (none for a callback or
// polling user who set none), and the read callback may run from the
// low watermark in force.
func (e *poEnd) enableRead() {
	e.readOn = true
	e.raiseBound(e.curHigh)
	e.lowerFloor(e.curLow)
}

// raiseBound raises the input's bound to what the high watermark high
// allows while reading is enabled.
func (e *poEnd) raiseBound(high int) {
	if high == 0 && e.r.prog.style == poChannel {
		high = actor.DefaultChannelHighWatermark
	}
	if high == 0 {
		e.bound.Store(-1)
		return
	}
	if b := e.bound.Load(); b >= 0 && int64(high) > b {
		e.bound.Store(int64(high))
	}
}

// lowerFloor lowers the read callback's floor to low.
func (e *poEnd) lowerFloor(low int) {
	if int64(low) < e.lowFloor.Load() {
		e.lowFloor.Store(int64(low))
	}
}

// checkBound checks that n bytes of input are within the read high
// watermark's bound.
func (e *poEnd) checkBound(n int, where string) {
	if b := e.bound.Load(); b >= 0 && int64(n) > b {
		e.r.Errorf("end %d: %s: input holds %d bytes, above the read high watermark bound %d", e.id, where, n, b)
	}
}

// setWatermark runs SetWatermark and checks it and the getter.
func (e *poEnd) setWatermark(d actor.Dir, low, high int) {
	valid := poValidDir(d) && low >= 0 && high >= 0 && (high == 0 || low <= high)
	if valid && d&actor.Read != 0 && e.readOn {
		e.raiseBound(high)
		e.lowerFloor(low)
	}
	if valid && d&actor.Write != 0 && int64(low) > e.wLowCeil.Load() {
		e.wLowCeil.Store(int64(low))
	}
	err := e.be.SetWatermark(d, low, high)
	e.expect(fmt.Sprintf("SetWatermark(%v, %d, %d)", d, low, high), err, valid)
	if err != nil {
		return
	}
	if d&actor.Read != 0 {
		e.curLow, e.curHigh = low, high
	}
	if d&actor.Write != 0 {
		e.wLow, e.wHigh = low, high
	}
	e.checkWatermarks()
}

// checkWatermarks checks that Watermark reports what was set last: a
// goroutine sees its own settings at once, and after a stop too.
func (e *poEnd) checkWatermarks() {
	for _, w := range []struct {
		d         actor.Dir
		low, high int
	}{{actor.Read, e.curLow, e.curHigh}, {actor.Write, e.wLow, e.wHigh}} {
		low, high, err := e.be.Watermark(w.d)
		if err != nil || low != w.low || high != w.high {
			e.r.Errorf("end %d: Watermark(%v) = %d, %d, %v, want %d, %d, nil", e.id, w.d, low, high, err, w.low, w.high)
		}
	}
}

// setMax runs SetMaxRead or SetMaxWrite and checks the getter.
func (e *poEnd) setMax(read bool, n int) {
	set, get, model, what := e.be.SetMaxWrite, e.be.MaxWrite, &e.maxWrite, "SetMaxWrite"
	def := actor.DefaultMaxWrite
	if read {
		set, get, model, what = e.be.SetMaxRead, e.be.MaxRead, &e.maxRead, "SetMaxRead"
		def = actor.DefaultMaxRead
	}
	err := set(n)
	e.expect(fmt.Sprintf("%s(%d)", what, n), err, n >= 0)
	if err == nil {
		*model = n
		if n == 0 {
			*model = def
		}
	}
	if got := get(); got != *model {
		e.r.Errorf("end %d: after %s(%d) = %v the getter says %d, want %d", e.id, what, n, err, got, *model)
	}
}

// drain starts a Drain in the background and checks its result when it
// returns.
func (e *poEnd) drain() {
	strict := e.state.Load() == poAlive && !e.halfClosed.Load() && !e.drainStarted
	e.drainStarted = true
	before := e.sent
	e.makeUncertain()
	e.halfClosed.Store(true)
	r := e.r
	r.drains.Add(1)
	go func() {
		defer r.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), poWait)
		defer cancel()
		err := e.be.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			r.Errorf("end %d: Drain did not finish within %v: %v", e.id, poWait, err)
		case !strict || e.otherClose.Load():
		case err == nil:
			if w := e.be.Written(); w < int64(before) {
				r.Errorf("end %d: Drain() = nil but Written() = %d of the %d bytes accepted before it", e.id, w, before)
			}
		case errors.Is(err, actor.ErrOutputLost):
			if e.peer.state.Load() == poAlive {
				r.Errorf("end %d: Drain() = %v though its partner was never closed", e.id, err)
			}
		default:
			r.Errorf("end %d: Drain() = %v, want nil or ErrOutputLost", e.id, err)
		}
	}()
}

// record takes bytes the end received and checks them against its
// peer's stream.
func (e *poEnd) record(p []byte, where string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(p) > 0 && e.atEOF {
		e.r.Errorf("end %d: %s delivered %d bytes after EOF", e.id, where, len(p))
	}
	for i, c := range p {
		if want := testkit.UniqueByte(e.peer.id, e.got+i); c != want {
			e.r.Errorf("end %d: %s: byte %d of the stream is %#x, want %#x (%d bytes delivered)",
				e.id, where, e.got+i, c, want, len(p))
			break
		}
	}
	e.got += len(p)
}

// take reads n bytes of in and records them.
func (e *poEnd) take(in *actor.Buffer, n int, where string) {
	p := make([]byte, n)
	k, err := in.Read(p)
	if n > 0 && (err != nil || k != n) {
		e.r.Errorf("end %d: %s: input Read(%d) = %d, %v", e.id, where, n, k, err)
	}
	e.record(p[:k], where)
}

// markEnded records the end of the read side.
func (e *poEnd) markEnded() { e.endOnce.Do(func() { close(e.ended) }) }

// enter is what every callback does first: no callback may run after
// Close returned, nor after the end's own callback called Session.Close.
func (e *poEnd) enter(what string) {
	if e.closedRet.Load() {
		e.r.Errorf("end %d: %s callback ran after Close returned", e.id, what)
	}
	if e.selfFreed.Load() {
		e.r.Errorf("end %d: %s callback ran after a callback called Session.Close", e.id, what)
	}
}

// deferred reports whether callbacks wait for a turn (DeferCallbacks), so
// that the state they see may have moved on since they were asked for.
func (e *poEnd) deferred() bool { return e.r.prog.opts&actor.DeferCallbacks != 0 }

// onRead is the Read callback.
func (e *poEnd) onRead(s *actor.Session) {
	e.enter("read")
	in := s.Input()
	e.checkBound(in.Len(), "read callback")
	triggered := e.readTriggered.Load()
	style := e.r.prog.style
	if !triggered && (style == poCallback || style == poPoll && !e.deferred()) {
		if floor := e.lowFloor.Load(); in.Len() == 0 || int64(in.Len()) < floor {
			e.r.Errorf("end %d: read callback with %d bytes of input, below the read low watermark (floor %d)", e.id, in.Len(), floor)
		}
	}
	switch style {
	case poChannel:
		if !triggered {
			e.r.Errorf("end %d: read callback ran for an In user", e.id)
		}
	case poCallback:
		n := in.Len()
		if c := e.r.prog.cbChunk; c > 0 && !e.draining.Load() {
			n = min(n, c)
		}
		e.take(in, n, "read callback")
		if e.r.prog.pause && in.Len() > 0 && !e.draining.Load() {
			if err := s.Disable(actor.Read); err != nil {
				e.r.Errorf("end %d: Session.Disable(Read) = %v", e.id, err)
			}
		}
	}
	testkit.Signal(e.readable)
	e.maybeFree(s, poFreeRead)
}

// onWrite is the Write callback.
func (e *poEnd) onWrite(s *actor.Session) {
	e.enter("write")
	if !e.deferred() && !e.writeTriggered.Load() {
		if n, ceil := s.Output().Len(), e.wLowCeil.Load(); int64(n) > ceil {
			e.r.Errorf("end %d: write callback with %d bytes of output, above the write low watermark (at most %d)", e.id, n, ceil)
		}
	}
	e.maybeFree(s, poFreeWrite)
}

// onEvent is the Event callback.
func (e *poEnd) onEvent(s *actor.Session, ev actor.Event, err error) {
	e.enter("event")
	e.checkEvent(ev, err, "event callback", &e.cbCounts, e.deferred(), s.Input())
	if ev&actor.EOF != 0 {
		if e.r.prog.style == poCallback {
			e.take(s.Input(), s.Input().Len(), "EOF callback")
			e.mu.Lock()
			e.atEOF = true
			e.mu.Unlock()
		}
		if e.r.prog.style != poChannel {
			e.markEnded()
		}
	}
	testkit.Signal(e.readable)
	e.maybeFree(s, poFreeEvent)
}

// checkEvent checks an event from the callback or from Events; deferred
// events may come ORed together, with the first one's cause. in is the
// input, seen from the event callback, or nil.
func (e *poEnd) checkEvent(ev actor.Event, err error, where string, counts *poCounts, deferred bool, in *actor.Buffer) {
	r := e.r
	if ev&actor.Connected != 0 {
		r.Errorf("end %d: %s: %v on a pair", e.id, where, ev)
	}
	if ev&actor.EOF != 0 {
		if n := counts.eof.Add(1); n > 1 {
			r.Errorf("end %d: %s: EOF reported %d times (%v, %v)", e.id, where, n, ev, err)
		}
		if ev&actor.Reading == 0 || !deferred && !errors.Is(err, io.EOF) {
			r.Errorf("end %d: %s: %v with %v, want Reading|EOF with io.EOF", e.id, where, ev, err)
		}
		if p := e.peer; p.state.Load() == poAlive && !p.halfClosed.Load() {
			r.Errorf("end %d: %s: %v though its partner is open and did not half-close", e.id, where, ev)
		}
	}
	if ev&actor.Error != 0 {
		if ev&actor.Reading != 0 && (!deferred || ev&(actor.EOF|actor.Writing) == 0) {
			r.Errorf("end %d: %s: read error %v: %v", e.id, where, ev, err)
		}
		if ev&actor.Writing != 0 {
			if n := counts.writeErr.Add(1); n > 1 {
				r.Errorf("end %d: %s: write failure reported %d times (%v, %v)", e.id, where, n, ev, err)
			}
			if !deferred && !errors.Is(err, syscall.EPIPE) {
				r.Errorf("end %d: %s: %v with %v, want a broken pipe", e.id, where, ev, err)
			}
			if !e.mayFailWrites() {
				r.Errorf("end %d: %s: %v (%v) though its partner is open and it did not half-close", e.id, where, ev, err)
			}
		}
	}
	if ev&actor.Timeout != 0 {
		// A read timeout does not run while the input is at the high
		// watermark; input cannot grow while it runs (progress disarms
		// it), so when it fires the input is below the highest mark.
		if b := e.bound.Load(); in != nil && !deferred && ev&actor.Reading != 0 && b > 0 && int64(in.Len()) >= b {
			r.Errorf("end %d: %s: %v with %d bytes of input, at the read high watermark (at most %d)", e.id, where, ev, in.Len(), b)
		}
		if !e.timeoutsSet.Load() {
			r.Errorf("end %d: %s: %v but no timeout was set", e.id, where, ev)
		}
		if !deferred && (ev&(actor.Reading|actor.Writing) == 0 || ev&(actor.Reading|actor.Writing) == actor.Reading|actor.Writing || !errors.Is(err, actor.ErrTimeout)) {
			r.Errorf("end %d: %s: %v with %v, want one direction and ErrTimeout", e.id, where, ev, err)
		}
	}
}

// maybeFree frees the end or its partner if the program armed the
// callback of kind to.
func (e *poEnd) maybeFree(s *actor.Session, kind int32) {
	arm := e.arm.Load()
	if arm&^poFreePartner != kind || !e.arm.CompareAndSwap(arm, 0) {
		return
	}
	if arm&poFreePartner != 0 {
		e.peer.be.Free()
		return
	}
	s.Close()
	e.selfFreed.Store(true)
}

// finish delivers what is deliverable: every end still open gets its
// timeouts cleared, reading and writing enabled and its write side
// finished, and the test consumes until each has read its peer's EOF (or
// stopped); then it joins the Drains, closes everything and checks.
func (r *poRun) finish() {
	var open []*poEnd
	for _, e := range r.ends {
		if e.state.Load() != poClosed {
			open = append(open, e)
		}
	}
	for _, e := range open {
		r.SetDoing("final phase: enabling end %d", e.id)
		// Bytes written after an earlier half-close may be lost without
		// a failure to show for it until a write is tried; only the
		// final half-close below proves that all came before it.
		e.aliveAtFinish = e.state.Load() == poAlive && !e.halfClosed.Load()
		e.draining.Store(true)
		// A read callback running now may have read draining before it
		// was set and pause reading after the Enable below: wait for it.
		if err := e.be.Do(func(*actor.Session) {}); err != nil {
			e.expect("Do", err, true)
		}
		err := e.be.SetTimeouts(0, 0)
		e.expect("SetTimeouts(0, 0)", err, true)
		if err == nil {
			e.rto, e.wto = 0, 0
		}
		e.setWatermark(actor.Read, 0, e.curHigh)
		e.enableRead()
		e.expect("Enable(Read|Write)", e.be.Enable(actor.Read|actor.Write), true)
		if r.prog.style == poCallback {
			// A read callback that took only part of the input is not
			// run again until more comes.
			e.noteTrigger(actor.Read)
			e.expect("Trigger(Read)", e.be.Trigger(actor.Read, actor.TriggerIgnoreWatermarks), true)
		}
	}
	for _, e := range open {
		e.halfClosed.Store(true)
		e.expect("Flush(Write, Finished)", e.be.Flush(actor.Write, actor.Finished), true)
	}
	for _, e := range open {
		r.SetDoing("final phase: awaiting the end of end %d's input", e.id)
		e.awaitEnd()
	}
	r.SetDoing("final phase: joining the Drains")
	drained := make(chan struct{})
	go func() {
		r.drains.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(poWait):
		r.Fatalf("a Drain did not return within %v after both ends read EOF", poWait)
	}
	var failed [2]bool
	for i, e := range r.ends {
		failed[i] = testkit.Closed(e.be.Failed())
		e.pollEvents()
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

// awaitEnd consumes the end's input until it has read its peer's EOF or
// stopped.
func (e *poEnd) awaitEnd() {
	timer := time.NewTimer(poWait)
	defer timer.Stop()
	for {
		switch e.r.prog.style {
		case poPoll:
			if !e.tryReadAll() {
				return // stopped
			}
			if testkit.Closed(e.ended) {
				// Everything before the EOF came before it: what the
				// read after it found was the last.
				e.complete = e.tryReadAll()
				return
			}
			select {
			case <-e.readable:
			case <-e.ended:
			case <-e.be.Done():
				return
			case <-timer.C:
				e.r.Fatalf("end %d: no EOF within %v (received %d, peer wrote %d)", e.id, poWait, e.received(), e.peer.be.Written())
			}
		case poCallback:
			select {
			case <-e.ended:
				e.complete = true
				return
			case <-e.be.Done():
				return
			case <-timer.C:
				e.r.Fatalf("end %d: no EOF within %v (received %d, peer wrote %d)", e.id, poWait, e.received(), e.peer.be.Written())
			}
		case poChannel:
			if e.in == nil {
				return
			}
			select {
			case p, ok := <-e.in:
				if !ok {
					e.inClosed()
					return
				}
				e.record(p, "In")
			case <-timer.C:
				e.r.Fatalf("end %d: In not closed within %v (received %d, peer wrote %d)", e.id, poWait, e.received(), e.peer.be.Written())
			}
			e.pollEvents()
		}
	}
}

// tryReadAll calls TryRead until the input is empty; it reports false if
// the end stopped.
func (e *poEnd) tryReadAll() bool {
	p := make([]byte, 64<<10)
	for {
		n, err := e.be.TryRead(p)
		if err != nil {
			if !errors.Is(err, actor.ErrClosed) || e.state.Load() == poAlive {
				e.r.Errorf("end %d: TryRead() = %d, %v", e.id, n, err)
			}
			return false
		}
		if n == 0 {
			return true
		}
		e.record(p[:n], "TryRead")
	}
}

// received returns how many bytes the end received.
func (e *poEnd) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

// closeAll closes the Base, whose Close joins both ends, or without a
// Base each end.
func (r *poRun) closeAll() {
	if r.base != nil {
		if err := r.base.Close(); err != nil {
			r.Errorf("Base.Close() = %v, want nil", err)
		}
		for _, e := range r.ends {
			if !testkit.Closed(e.be.Done()) {
				r.Errorf("end %d: Done() not closed after Base.Close returned", e.id)
			}
		}
	}
	for _, e := range r.ends {
		if err := e.be.Close(); err != nil {
			r.Errorf("end %d: Close() = %v, want nil", e.id, err)
		}
		e.closedRet.Store(true)
		e.state.Store(poClosed)
	}
}

// checkClosed checks a closed end: every method returns at once with
// ErrClosed or its zero result, the channels are closed, and the settings
// getters report what was set.
func (e *poEnd) checkClosed() {
	r := e.r
	r.SetDoing("final phase: methods of closed end %d", e.id)
	closed := func(what string, err error) {
		if !errors.Is(err, actor.ErrClosed) {
			r.Errorf("end %d: %s after Close = %v, want ErrClosed", e.id, what, err)
		}
	}
	closed("Write", e.be.Write([]byte("x")))
	var buf actor.Buffer
	buf.WriteString("x")
	closed("WriteBuffer", e.be.WriteBuffer(&buf))
	closed("Send", e.be.Send(context.Background(), []byte("x")))
	n, err := e.be.TryRead(make([]byte, 8))
	closed("TryRead", err)
	if n != 0 {
		r.Errorf("end %d: TryRead after Close = %d bytes", e.id, n)
	}
	closed("ReadBuffer", e.be.ReadBuffer(&buf))
	closed("Do", e.be.Do(func(*actor.Session) { r.Errorf("end %d: Do ran after Close", e.id) }))
	closed("Enable", e.be.Enable(actor.Read))
	closed("Disable", e.be.Disable(actor.Write))
	closed("SetWatermark", e.be.SetWatermark(actor.Read, 1, 2))
	closed("Flush", e.be.Flush(actor.Write, actor.Finished))
	closed("Trigger", e.be.Trigger(actor.Read|actor.Write, 0))
	closed("SetTimeouts", e.be.SetTimeouts(time.Second, 0))
	closed("SetMaxRead", e.be.SetMaxRead(1))
	closed("SetMaxWrite", e.be.SetMaxWrite(1))
	// Close's result, or the loss an earlier Drain reported.
	if err := e.be.Drain(context.Background()); err != nil && !errors.Is(err, actor.ErrOutputLost) {
		r.Errorf("end %d: Drain after Close = %v, want Close's nil", e.id, err)
	}
	if err := e.be.Close(); err != nil {
		r.Errorf("end %d: second Close = %v, want nil", e.id, err)
	}
	if d, in, out, p, tr := e.be.Enabled(), e.be.InputLen(), e.be.OutputLen(), e.be.Partner(), e.be.Transport(); d != 0 || in != 0 || out != 0 || p != nil || tr != nil {
		r.Errorf("end %d: after Close Enabled, InputLen, OutputLen, Partner, Transport = %v, %d, %d, %v, %v; want zeros", e.id, d, in, out, p, tr)
	}
	if err := e.be.Err(); err == nil {
		r.Errorf("end %d: Err() = nil after Close", e.id)
	}
	if cbs := e.be.Callbacks(); cbs.Read != nil || cbs.Write != nil || cbs.Event != nil {
		r.Errorf("end %d: Callbacks() not the zero value after Close", e.id)
	}
	if !testkit.Closed(e.be.Failed()) || !testkit.Closed(e.be.Done()) {
		r.Errorf("end %d: Failed or Done not closed after Close", e.id)
	}
	if e.in != nil {
		e.drainClosedIn()
	}
	select {
	case _, ok := <-e.be.In():
		if ok {
			r.Errorf("end %d: In delivered after Close", e.id)
		}
	default:
		r.Errorf("end %d: In not closed after Close", e.id)
	}
	evs := e.be.Events()
	for range eventBufferMax + 1 {
		select {
		case ev, ok := <-evs:
			if !ok {
				evs = nil
			} else if e.evs != nil {
				e.checkEvent(ev.Event, ev.Err, "Events", &e.chCounts, false, nil)
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
	e.checkWatermarks()
	if rto, wto := e.be.Timeouts(); rto != e.rto || wto != e.wto {
		r.Errorf("end %d: Timeouts() = %v, %v after Close, want %v, %v", e.id, rto, wto, e.rto, e.wto)
	}
	if mr, mw := e.be.MaxRead(), e.be.MaxWrite(); mr != e.maxRead || mw != e.maxWrite {
		r.Errorf("end %d: MaxRead, MaxWrite = %d, %d after Close, want %d, %d", e.id, mr, mw, e.maxRead, e.maxWrite)
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
		case p, ok := <-e.in:
			if !ok {
				e.in = nil
				return
			}
			e.record(p, "In after Close")
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
	r, p := e.r, e.peer
	w := e.be.Written()
	got := p.received()
	if w > int64(e.sent) {
		r.Errorf("end %d: Written() = %d, more than the %d bytes accepted", e.id, w, e.sent)
	}
	if int64(got) > w {
		r.Errorf("end %d received %d bytes, more than its partner's Written() = %d", p.id, got, w)
	}
	if p.complete && int64(got) != w {
		r.Errorf("end %d read EOF after %d bytes, but its partner's Written() = %d", p.id, got, w)
	}
	if p.complete && e.aliveAtFinish && !failed && got != e.sent {
		r.Errorf("end %d stayed open and its output never failed, but its partner read EOF after %d of the %d bytes it accepted (Written %d)",
			e.id, got, e.sent, w)
	}
}
