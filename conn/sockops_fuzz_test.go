package conn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/netwrap"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
	"go.uber.org/goleak"
)

// FuzzSocketOps runs a program of operations on a socket bufferevent over
// a real loopback connection (TCP on 127.0.0.1, or Unix) and on the raw
// net.Conn at the other end, and checks it against a model of what the
// documentation promises. The fuzz input is decoded by soDecode: a
// two-byte header (how the socket's input is consumed, its options,
// whether it has a write callback, small kernel buffers, which end of the
// connection it is, TCP or Unix, how much a read callback takes) and up
// to soMaxOps operations of four bytes each.
//
// The socket's operations: Write, WriteBuffer and Send of a known stream;
// reads (TryRead or ReadBuffer, a Trigger of the read callback, or what
// In has ready, by the program's style); Enable and Disable; small
// watermarks; Flush in every mode; SetMaxRead and SetMaxWrite;
// SetTimeouts on the Base's manual clock and moves of that clock; a rate
// limit (one that never runs dry, or one that does until the clock
// moves), which makes the actor read and write through its loops instead
// of its socket; a Drain in the background; Close; Free; and one turn of
// the actor (Do). The peer's: a write of its own stream and a read, both
// of what the kernel takes or has at once (the peer never waits, so a
// peer that does not read lets the socket's writes fill the small kernel
// buffers); a half-close; a close; a reset (SO_LINGER 0).
//
// After the program the socket, if nothing closed it, gets its timeouts
// and rate limit cleared, reading and writing enabled and its write side
// finished; the peer, if open, half-closes and reads to its end of
// stream, while the test consumes the socket's input to its end; then
// the Base is closed, which joins everything. Checked along the way and
// at the end:
//
//   - what either side receives is the other's stream from offset 0, in
//     order, each byte once (checked as it arrives); a side that read a
//     clean end of stream received exactly what the other side's kernel
//     took (the peer's writes; the socket's Written, final once closed),
//     and all the other accepted when neither closed nor reset anything
//     and the socket's output never failed;
//   - the input never holds more than the largest read high watermark in
//     force while reading was enabled; the read callback sees at least
//     the read low watermark, the write callback at most the write low
//     watermark;
//   - EOF at most once, only after the peer sent its FIN (a half-close or
//     a close; never after a reset alone: a reset is no clean end); a read
//     error only after the peer closed or reset, wrapping ECONNRESET (or
//     EPIPE); a write failure at most once, only after the peer closed or
//     reset or the socket half-closed; a reset the socket lived through
//     ends its read side with an error wrapping ECONNRESET; no Connected;
//     no Timeout unless one was set and the clock moved; no callback
//     after Close returned;
//   - a Drain that returns nil wrote everything accepted before it, and
//     it fails only when the peer closed or reset;
//   - every method's error matches its documentation, and after the
//     Base's Close every method returns at once with ErrClosed or its
//     zero result;
//   - the Base's Close joins every goroutine of the iteration (goleak),
//     and the whole iteration ends within soWatchdog, or the test fails
//     with every goroutine's stack.
//
// The read budget's shares (actor.ReadSharesHeld) are checked by package
// actor's TestMain only: that counter is not exported to other packages.
func FuzzSocketOps(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		prog := soDecode(data)
		r := &soRun{Run: testkit.Run{T: t}, prog: prog, ignore: goleak.IgnoreCurrent()}
		r.Watch(soWatchdog, r.run, prog, nil)
	})
}

// The shape and bounds of a program.
const (
	soHeaderSize = 2
	soOpSize     = 4
	soMaxOps     = 48
	// soBudget is the most bytes either side writes in a program, so that
	// a program with tiny watermarks and kernel buffers still runs in a
	// few milliseconds.
	soBudget = 64 << 10
	// soSmallSend and soSmallRecv are the kernel buffer sizes asked for
	// in the programs that make a full socket cheap (Linux doubles them):
	// the peer's receive window then closes after some 40 KiB. A smaller
	// receive buffer makes loopback TCP stall for a persist or
	// retransmission timer (40-200 ms) now and then, plain net.Conns
	// alike (4 KiB: 64 KiB took up to 1.8 s); 24 KiB showed no stall in
	// 240 transfers.
	soSmallSend = 4 << 10
	soSmallRecv = 24 << 10
	// soSmallMaxWrite is the per-write maximum of a socket with small
	// kernel buffers: writes far larger than the send buffer make Linux's
	// TCP crawl (see actor.Bufferevent.SetMaxWrite).
	soSmallMaxWrite = 16 << 10
	// soWait bounds each wait of a run for something the socket or the
	// peer owes it (an end of stream, a Drain's return).
	soWait = 10 * time.Second
	// soWatchdog bounds a whole run.
	soWatchdog = 30 * time.Second
)

// soStyle is how a program consumes the socket's input: one style per
// run, since the Read callback and In are two views of one delivery.
type soStyle uint8

// The consumption styles.
const (
	soPoll     soStyle = iota // the test calls TryRead or ReadBuffer; the Read callback only signals
	soCallback                // the Read callback takes the input
	soChannel                 // the test receives from In, and events from Events
)

// String returns the style's name.
func (s soStyle) String() string { return [...]string{"poll", "callback", "channel"}[s] }

// soKind is an operation of a program.
type soKind uint8

// The operations. Each takes up to three argument bytes a, b and c; see
// soOp.String for how they are decoded.
const (
	soWrite soKind = iota
	soRead
	soEnable
	soDisable
	soWatermark
	soFlush
	soMax
	soTimeouts
	soAdvance
	soRateLimit
	soDrain
	soClose
	soFree
	soTurn
	soPeerWrite
	soPeerRead
	soPeerCloseWrite
	soPeerClose
	soPeerReset
	soNumKinds
)

// soOp is one decoded operation.
type soOp struct {
	kind    soKind
	a, b, c byte
}

// soProgram is a decoded fuzz input.
type soProgram struct {
	style    soStyle
	opts     actor.Option
	writeCB  bool // the socket has a write callback (its sink is then never lent)
	small    bool // small kernel buffers on both ends
	isClient bool // the socket is the dialling end
	unix     bool // a Unix connection instead of TCP
	cbChunk  int  // the most a read callback takes in one call; 0: all
	ops      []soOp
}

// soDecode decodes a fuzz input; every input is a valid program. Missing
// bytes read as zero, and what follows the last operation is ignored.
func soDecode(data []byte) soProgram {
	var h [soHeaderSize]byte
	copy(h[:], data)
	p := soProgram{
		style:    soStyle(h[0] & 3 % 3),
		writeCB:  h[0]&0x08 != 0,
		small:    h[0]&0x10 != 0,
		isClient: h[0]&0x20 != 0,
		unix:     h[0]&0x40 != 0,
		cbChunk:  int(h[1]) * 16,
	}
	if h[0]&0x04 != 0 {
		p.opts |= actor.DeferCallbacks
	}
	if h[0]&0x80 != 0 {
		p.opts |= actor.LargeStack
	}
	data = data[min(len(data), soHeaderSize):]
	for len(data) > 0 && len(p.ops) < soMaxOps {
		var o [soOpSize]byte
		copy(o[:], data)
		data = data[min(len(data), soOpSize):]
		p.ops = append(p.ops, soOp{kind: soKind(o[0] % byte(soNumKinds)), a: o[1], b: o[2], c: o[3]})
	}
	return p
}

// String describes the program, for a failure's log.
func (p soProgram) String() string {
	var sb strings.Builder
	nw := "tcp"
	if p.unix {
		nw = "unix"
	}
	fmt.Fprintf(&sb, "style=%v opts=%#x writeCB=%v small=%v client=%v net=%s cbChunk=%d;",
		p.style, uint32(p.opts), p.writeCB, p.small, p.isClient, nw, p.cbChunk)
	for _, op := range p.ops {
		sb.WriteString(" ")
		sb.WriteString(op.String())
		sb.WriteString(";")
	}
	return sb.String()
}

// String describes the operation with its decoded arguments.
func (op soOp) String() string {
	switch op.kind {
	case soWrite:
		return fmt.Sprintf("%s(%d)", [...]string{"Write", "WriteBuffer", "Send"}[op.c%3], soSize(op.a, op.b))
	case soRead:
		return fmt.Sprintf("read(%d, opts %#x, ReadBuffer %v, recv %d)", soSize(op.a, op.b), uint32(soTrigOpt(op.c)), op.c&0x40 != 0, op.a%4+1)
	case soEnable:
		return fmt.Sprintf("Enable(%v)", soDir(op.a))
	case soDisable:
		return fmt.Sprintf("Disable(%v)", soDir(op.a))
	case soWatermark:
		return fmt.Sprintf("SetWatermark(%v, %d, %d)", soDir(op.a), soLow(op.b), soHigh(op.c))
	case soFlush:
		return fmt.Sprintf("Flush(%v, %v)", soDir(op.a), soMode(op.b))
	case soMax:
		return fmt.Sprintf("%s(%d)", [...]string{"SetMaxWrite", "SetMaxRead"}[op.a&1], soMaxIO(op.b))
	case soTimeouts:
		return fmt.Sprintf("SetTimeouts(%v, %v)", soTimeout(op.a), soTimeout(op.b))
	case soAdvance:
		return fmt.Sprintf("clock.Advance(%v)", soStep(op.a))
	case soRateLimit:
		return fmt.Sprintf("SetRateLimit(%s)", [...]string{"nil", "ample", "tight"}[op.a%3])
	case soDrain:
		return "Drain()"
	case soClose:
		return "Close()"
	case soFree:
		return "Free()"
	case soTurn:
		return "Do(nothing)"
	case soPeerWrite:
		return fmt.Sprintf("peer.write(%d)", soSize(op.a, op.b))
	case soPeerRead:
		return fmt.Sprintf("peer.read(%d)", soSize(op.a, op.b))
	case soPeerCloseWrite:
		return "peer.CloseWrite()"
	case soPeerClose:
		return "peer.Close()"
	case soPeerReset:
		return "peer.Reset()"
	}
	return fmt.Sprintf("op%d", op.kind)
}

// The argument decoders.

// soSize is a byte count up to 32764, most of them below 8 KiB.
func soSize(a, b byte) int {
	n := int(a) | int(b&0x1f)<<8
	if b&0x20 != 0 {
		n *= 4
	}
	return n
}

// soDir is a direction, valid or not (0 and bits beyond Read|Write).
func soDir(a byte) actor.Dir { return actor.Dir(a & 7) }

// soLow is a low watermark, from -512 to 508.
func soLow(b byte) int { return int(int8(b)) * 4 }

// soHigh is a high watermark, from -2048 to 2032.
func soHigh(c byte) int { return int(int8(c)) * 16 }

// soMode is a flush mode from -3 to 3: 0 to 2 are valid.
func soMode(b byte) actor.FlushMode { return actor.FlushMode(int8(b) % 4) }

// soMaxIO is a per-read or per-write maximum from -8192 to 8128.
func soMaxIO(b byte) int { return int(int8(b)) * 64 }

// soTimeout is a timeout on the manual clock: none, 1, 2 or 5 ms, or a
// negative one.
func soTimeout(x byte) time.Duration {
	return [...]time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, -time.Millisecond}[x%5]
}

// soStep is how far a program moves the manual clock: 0 to 7 ms.
func soStep(a byte) time.Duration { return time.Duration(a%8) * time.Millisecond }

// soTrigOpts are the trigger options a program picks from.
var soTrigOpts = [...]actor.TriggerOption{
	0, actor.TriggerIgnoreWatermarks, actor.TriggerDefer, actor.TriggerIgnoreWatermarks | actor.TriggerDefer,
}

// soTrigOpt picks a trigger option.
func soTrigOpt(x byte) actor.TriggerOption { return soTrigOpts[int(x)%len(soTrigOpts)] }

// soValidDir reports whether d is Read, Write or both.
func soValidDir(d actor.Dir) bool { return d != 0 && d&^(actor.Read|actor.Write) == 0 }

// The streams: the socket writes stream soSocketID, the peer stream
// soPeerID.
const (
	soSocketID = 0
	soPeerID   = 1
)

// soBroken reports whether err is what a write or a read meets on a
// connection its peer closed or reset.
func soBroken(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENOTCONN)
}

// The model's view of whether the socket is open.
const (
	soAlive     int32 = iota // nothing closed it, nor can anything the program did
	soUncertain              // Free or Drain: it may stop at any time
	soClosed                 // Close returned
)

// soRun is one run of a program and the model of the socket. Its methods
// run on the run goroutine, but for the callbacks (onRead, onWrite,
// onEvent), which run on the actor, and the Drains' and the final peer
// reader's goroutines. The plain fields are the run goroutine's; the
// atomics are shared with the callbacks, and the model updates them before
// it calls the method they describe (a bound is raised, a floor lowered,
// a state made less certain), so a callback never holds the socket to a
// promise stricter than the one in force.
type soRun struct {
	testkit.Run
	prog   soProgram
	ignore goleak.Option // the goroutines from before the run
	clock  *testbev.ManualClock
	base   *actor.Base
	s      *conn.Socket
	peer   *soPeer
	drains sync.WaitGroup

	in  <-chan []byte          // In, for the channel style; nil once closed
	evs <-chan actor.EventInfo // Events, for the channel style

	sent            int   // bytes Write, WriteBuffer and Send accepted
	written         int64 // Written() when last looked at
	readOn          bool  // reading may be enabled
	curLow, curHigh int   // the read watermarks last set
	wLow, wHigh     int   // the write watermarks last set
	rto, wto        time.Duration
	maxRead         int
	maxWrite        int
	aliveAtFinish   bool // open, never closing and not half-closed when the program ended
	openAtFinish    bool // open and never closing when the program ended
	complete        bool // the socket read a clean EOF and took every byte before it
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
	lowFloor      atomic.Int64
	wLowCeil      atomic.Int64 // the largest write low watermark ever set
	readTriggered atomic.Bool
	timeoutsSet   atomic.Bool // a timeout was set
	timeoutsDue   atomic.Bool // a timeout was set and the clock moved since
	draining      atomic.Bool // the final phase: the read callback takes everything
	closedRet     atomic.Bool
	readable      chan struct{}
	ended         chan struct{} // closed at the end of the read side (EOF or error)
	endOnce       sync.Once
	cbCounts      soCounts // events seen by the event callback
	chCounts      soCounts // events seen on Events

	mu         sync.Mutex // guards following
	got        int        // bytes received, checked against the peer's stream
	atEnd      bool       // the read side ended: nothing more may arrive
	endErr     error      // the cause of a read error the socket reported (not deferred)
	sawReadErr bool       // the socket reported Reading|Error
	sawEOF     bool       // the socket reported Reading|EOF
}

// soCounts counts the events that may come at most once.
type soCounts struct {
	eof, readErr, writeErr atomic.Int32
}

// soPeer is the raw end of the connection and its model. Its reads and
// writes never wait: each is one system call of what the kernel has or
// takes at once, through the connection's syscall.RawConn.
type soPeer struct {
	r    *soRun
	c    net.Conn
	rc   syscall.RawConn
	tcp  bool
	open bool // not closed nor reset (the run goroutine's)

	written int  // bytes of its stream the kernel took
	readEnd bool // a read met the end of stream or an error

	// The model's view, shared with the callbacks.
	fin    atomic.Bool // it may have sent a FIN: CloseWrite or Close
	broken atomic.Bool // it closed or reset: the socket's writes may fail, its reads see an error
	// resetNoFIN: a TCP reset with no FIN before it, so the socket must
	// never see a clean end of stream.
	resetNoFIN atomic.Bool

	mu     sync.Mutex // guards following
	got    int        // bytes read, checked against the socket's stream
	eof    bool       // a read met a clean end of stream
	endErr error      // the error a read met
}

// run runs the program, the final phase and the checks, and closes
// everything even when it ends early.
func (r *soRun) run() {
	defer r.Recover()
	r.SetDoing("setup")
	r.setup()
	defer r.cleanup()
	for i, op := range r.prog.ops {
		r.SetDoing("op %d: %v", i, op)
		r.step(op)
		r.checkBound(r.s.InputLen(), "InputLen()")
		r.checkLive()
		r.pollEvents()
	}
	r.finish()
}

// setup makes the connection, the Base on a manual clock and the socket,
// sets the callbacks and, for the channel style, asks for In and Events.
func (r *soRun) setup() {
	nw := "tcp"
	if r.prog.unix {
		nw = "unix"
	}
	client, server := testconn.Pair(r.T, nw)
	mine, theirs := server, client
	if r.prog.isClient {
		mine, theirs = client, server
	}
	if r.prog.small {
		type buffered interface {
			SetWriteBuffer(int) error
			SetReadBuffer(int) error
		}
		for _, c := range []net.Conn{mine, theirs} {
			c.(buffered).SetWriteBuffer(soSmallSend)
			c.(buffered).SetReadBuffer(soSmallRecv)
		}
	}
	rc, err := theirs.(syscall.Conn).SyscallConn()
	if err != nil {
		r.Fatalf("SyscallConn() = %v", err)
	}
	r.peer = &soPeer{r: r, c: theirs, rc: rc, tcp: !r.prog.unix, open: true}
	r.clock = testbev.NewManualClock()
	r.base, err = actor.NewBaseConfig(actor.BaseConfig{Clock: r.clock})
	if err != nil {
		r.Fatalf("NewBaseConfig() = %v", err)
	}
	r.s, err = conn.New(r.base, mine, r.prog.opts|actor.CloseOnFree)
	if err != nil {
		r.Fatalf("conn.New() = %v", err)
	}
	r.maxRead, r.maxWrite = actor.DefaultMaxRead, actor.DefaultMaxWrite
	if r.prog.small {
		r.setMax(false, soSmallMaxWrite)
	}
	r.readable = make(chan struct{}, 1)
	r.ended = make(chan struct{})
	r.bound.Store(0) // reading starts disabled: nothing arrives
	r.lowFloor.Store(math.MaxInt64)
	r.setCallbacks()
	if r.prog.style == soChannel {
		r.enableRead()
		r.in = r.s.In()
		r.evs = r.s.Events()
	}
}

// setCallbacks sets the socket's callbacks: a write callback only when
// the program asks for one, since a socket with one never lends its sink.
func (r *soRun) setCallbacks() {
	cbs := actor.Callbacks{Read: r.onRead, Event: r.onEvent}
	if r.prog.writeCB {
		cbs.Write = r.onWrite
	}
	r.s.SetCallbacks(cbs)
}

// cleanup closes the Base, the socket and the peer and joins the Drains:
// after a finished run it finds everything closed already.
func (r *soRun) cleanup() {
	r.SetDoing("cleanup")
	r.otherClose.Store(true) // a Drain still waiting is cut short
	if r.base != nil {
		r.base.Close()
	}
	if r.s != nil {
		r.s.Close()
		r.closedRet.Store(true)
	}
	if r.peer != nil {
		r.peer.c.Close()
	}
	r.drains.Wait()
}

// step runs one operation.
func (r *soRun) step(op soOp) {
	switch op.kind {
	case soWrite:
		r.write(op)
	case soRead:
		r.read(op)
	case soEnable:
		d := soDir(op.a)
		if soValidDir(d) && d&actor.Read != 0 {
			r.enableRead()
		}
		r.expect("Enable", r.s.Enable(d), soValidDir(d))
	case soDisable:
		d := soDir(op.a)
		err := r.s.Disable(d)
		r.expect("Disable", err, soValidDir(d))
		if err == nil {
			if d&actor.Read != 0 {
				r.readOn = false
			}
			// Only this goroutine enables, so the bits stay off.
			if got := r.s.Enabled(); got&d != 0 {
				r.Errorf("Enabled() = %v right after Disable(%v)", got, d)
			}
		}
	case soWatermark:
		r.setWatermark(soDir(op.a), soLow(op.b), soHigh(op.c))
	case soFlush:
		d, mode := soDir(op.a), soMode(op.b)
		valid := soValidDir(d) && mode >= actor.Normal && mode <= actor.Finished
		if valid && d&actor.Write != 0 && mode == actor.Finished {
			r.halfClosed.Store(true)
		}
		r.expect("Flush", r.s.Flush(d, mode), valid)
	case soMax:
		n := soMaxIO(op.b)
		if n == 0 && r.prog.small && op.a&1 == 0 {
			n = soSmallMaxWrite // not the default, which small buffers make crawl
		}
		r.setMax(op.a&1 != 0, n)
	case soTimeouts:
		rto, wto := soTimeout(op.a), soTimeout(op.b)
		valid := rto >= 0 && wto >= 0
		if valid && (rto > 0 || wto > 0) {
			r.timeoutsSet.Store(true)
		}
		err := r.s.SetTimeouts(rto, wto)
		r.expect("SetTimeouts", err, valid)
		if err == nil {
			r.rto, r.wto = rto, wto
		}
		if got, gotW := r.s.Timeouts(); got != r.rto || gotW != r.wto {
			r.Errorf("Timeouts() = %v, %v after SetTimeouts(%v, %v) = %v, want %v, %v", got, gotW, rto, wto, err, r.rto, r.wto)
		}
	case soAdvance:
		d := soStep(op.a)
		if d > 0 && r.timeoutsSet.Load() {
			r.timeoutsDue.Store(true)
		}
		r.clock.Advance(d)
	case soRateLimit:
		r.setRateLimit(op.a % 3)
	case soDrain:
		r.drain()
	case soClose:
		r.makeUncertain()
		r.otherClose.Store(true)
		if err := r.s.Close(); err != nil {
			r.Errorf("Close() = %v, want nil", err)
		}
		r.closedRet.Store(true)
		r.state.Store(soClosed)
		if !testkit.Closed(r.s.Done()) {
			r.Errorf("Done() not closed after Close returned")
		}
	case soFree:
		r.makeUncertain()
		r.otherClose.Store(true)
		r.s.Free()
	case soTurn:
		err := r.s.Do(func(*actor.Session) {})
		r.expect("Do", err, true)
	case soPeerWrite:
		r.peer.write(soSize(op.a, op.b))
	case soPeerRead:
		r.peer.read(soSize(op.a, op.b))
	case soPeerCloseWrite:
		r.peer.closeWrite()
	case soPeerClose:
		r.peer.close(false)
	case soPeerReset:
		r.peer.close(true)
	}
}

// makeUncertain marks a live socket as one that may stop at any time.
func (r *soRun) makeUncertain() { r.state.CompareAndSwap(soAlive, soUncertain) }

// mayFailWrites reports whether a write failure is allowed: the peer
// closed or reset, or the socket asked for its half-close.
func (r *soRun) mayFailWrites() bool { return r.peer.broken.Load() || r.halfClosed.Load() }

// expect checks the error of a call that changes state: ErrInvalid for
// bad arguments (ErrClosed too once the socket may be closed, as a closed
// check may come first), nil on a live socket, nil or ErrClosed on one
// that may have stopped, ErrClosed on a closed one.
func (r *soRun) expect(what string, err error, valid bool) {
	st := r.state.Load()
	ok := false
	switch {
	case !valid:
		ok = errors.Is(err, actor.ErrInvalid) || st != soAlive && errors.Is(err, actor.ErrClosed)
	case st == soAlive:
		ok = err == nil
	case st == soUncertain:
		ok = err == nil || errors.Is(err, actor.ErrClosed)
	default:
		ok = errors.Is(err, actor.ErrClosed)
	}
	if !ok {
		r.Errorf("(state %d): %s = %v (arguments valid: %v)", st, what, err, valid)
	}
}

// expectWrite checks the error of a Write, WriteBuffer or Send: as
// expect, but a write may also fail with the connection's failure once
// the output may have failed, and a Send with its context's error.
func (r *soRun) expectWrite(what string, err error, ctxErr bool) {
	st := r.state.Load()
	ok := err == nil && st != soClosed ||
		errors.Is(err, actor.ErrClosed) && st != soAlive ||
		soBroken(err) && r.mayFailWrites() ||
		ctxErr && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if !ok {
		r.Errorf("(state %d, half-closed %v, peer broken %v): %s = %v",
			st, r.halfClosed.Load(), r.peer.broken.Load(), what, err)
	}
}

// write writes the next bytes of the socket's stream with Write,
// WriteBuffer or Send.
func (r *soRun) write(op soOp) {
	n := min(soSize(op.a, op.b), soBudget-r.sent)
	var err error
	switch op.c % 3 {
	case 0:
		err = r.s.Write(testkit.UniqueAt(soSocketID, r.sent, n))
		r.expectWrite("Write", err, false)
	case 1:
		var buf actor.Buffer
		buf.Write(testkit.UniqueAt(soSocketID, r.sent, n))
		err = r.s.WriteBuffer(&buf)
		r.expectWrite("WriteBuffer", err, false)
		if want := map[bool]int{true: 0, false: n}[err == nil]; buf.Len() != want {
			r.Errorf("WriteBuffer(%d bytes) = %v left %d bytes in the buffer, want %d", n, err, buf.Len(), want)
		}
		buf.Reset()
	case 2:
		// One piece, so that it is taken whole or not at all.
		high := r.wHigh
		if high == 0 {
			high = actor.DefaultChannelHighWatermark
		}
		n = min(n, high)
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if op.c&4 != 0 {
			cancel() // Send may still take it if the actor is ready
		}
		err = r.s.Send(ctx, testkit.UniqueAt(soSocketID, r.sent, n))
		cancel()
		r.expectWrite("Send", err, true)
	}
	if err == nil {
		r.sent += n
	}
}

// read consumes input in the run's style: TryRead or ReadBuffer, a
// Trigger of the read callback, or what In has ready.
func (r *soRun) read(op soOp) {
	switch r.prog.style {
	case soPoll:
		if op.c&0x40 != 0 {
			var buf actor.Buffer
			err := r.s.ReadBuffer(&buf)
			r.expect("ReadBuffer", err, true)
			if err != nil && buf.Len() != 0 {
				r.Errorf("ReadBuffer() = %v with %d bytes", err, buf.Len())
			}
			r.take(&buf, buf.Len(), "ReadBuffer")
			return
		}
		p := make([]byte, soSize(op.a, op.b))
		n, err := r.s.TryRead(p)
		r.expect("TryRead", err, true)
		if err != nil && n != 0 {
			r.Errorf("TryRead() = %d, %v: bytes with an error", n, err)
		}
		r.record(p[:n], "TryRead")
	case soCallback:
		r.readTriggered.Store(true)
		r.expect("Trigger(Read)", r.s.Trigger(actor.Read, soTrigOpt(op.c)), true)
	case soChannel:
		for range int(op.a%4) + 1 {
			if !r.recvReady() {
				return
			}
		}
	}
}

// recvReady takes one chunk In has ready, if any, and reports whether it
// took one.
func (r *soRun) recvReady() bool {
	if r.in == nil {
		return false
	}
	select {
	case p, ok := <-r.in:
		if !ok {
			r.inClosed()
			return false
		}
		r.record(p, "In")
		return true
	default:
		return false
	}
}

// inClosed takes the closing of In: on a live socket it means the end of
// the read side, after every byte before it was delivered, and Err says
// why (the stream's first cause, which may be a write's failure: how the
// read side ended is taken from the events).
func (r *soRun) inClosed() {
	r.in = nil
	if r.state.Load() != soAlive {
		return
	}
	if err := r.s.Err(); err == nil || errors.Is(err, actor.ErrClosed) {
		r.Errorf("In closed on a live socket with Err() = %v, want the stream's end", err)
		return
	}
	r.complete = true
	r.markEnded()
}

// pollEvents takes the events Events has ready (channel style).
func (r *soRun) pollEvents() {
	for r.evs != nil {
		select {
		case ev, ok := <-r.evs:
			if !ok {
				r.evs = nil
				return
			}
			r.checkEvent(ev.Event, ev.Err, "Events", &r.chCounts, false, nil)
			r.noteReadEnd(ev.Event, ev.Err, false)
		default:
			return
		}
	}
}

// checkLive checks what the getters say between operations: Written
// never decreases, and a socket that nothing could have closed or failed
// (open, never half-closed, its peer neither closed nor reset) has not
// stopped, has an open Failed, and an Err that is nil or, once the peer
// half-closed, io.EOF.
func (r *soRun) checkLive() {
	if w := r.s.Written(); w < r.written {
		r.Errorf("Written() went from %d down to %d", r.written, w)
	} else {
		r.written = w
	}
	if r.state.Load() != soAlive {
		return
	}
	if testkit.Closed(r.s.Done()) {
		r.Errorf("the socket stopped on its own")
	}
	if r.halfClosed.Load() || r.peer.broken.Load() {
		return
	}
	if err := r.s.Err(); err != nil && !(r.peer.fin.Load() && errors.Is(err, io.EOF)) {
		r.Errorf("Err() = %v though nothing ended its stream", err)
	}
	if testkit.Closed(r.s.Failed()) {
		r.Errorf("Failed() closed though its peer is open and it did not half-close")
	}
}

// enableRead updates the model before reading is enabled: the input may
// fill to the read high watermark in force (none for a callback or
// polling user who set none), and the read callback may run from the
// low watermark in force.
func (r *soRun) enableRead() {
	r.readOn = true
	r.raiseBound(r.curHigh)
	r.lowerFloor(r.curLow)
}

// raiseBound raises the input's bound to what the high watermark high
// allows while reading is enabled.
func (r *soRun) raiseBound(high int) {
	if high == 0 && r.prog.style == soChannel {
		high = actor.DefaultChannelHighWatermark
	}
	if high == 0 {
		r.bound.Store(-1)
		return
	}
	if b := r.bound.Load(); b >= 0 && int64(high) > b {
		r.bound.Store(int64(high))
	}
}

// lowerFloor lowers the read callback's floor to low.
func (r *soRun) lowerFloor(low int) {
	if int64(low) < r.lowFloor.Load() {
		r.lowFloor.Store(int64(low))
	}
}

// checkBound checks that n bytes of input are within the read high
// watermark's bound.
func (r *soRun) checkBound(n int, where string) {
	if b := r.bound.Load(); b >= 0 && int64(n) > b {
		r.Errorf("%s: input holds %d bytes, above the read high watermark bound %d", where, n, b)
	}
}

// setWatermark runs SetWatermark and checks it and the getter.
func (r *soRun) setWatermark(d actor.Dir, low, high int) {
	valid := soValidDir(d) && low >= 0 && high >= 0 && (high == 0 || low <= high)
	if valid && d&actor.Read != 0 && r.readOn {
		r.raiseBound(high)
		r.lowerFloor(low)
	}
	if valid && d&actor.Write != 0 && int64(low) > r.wLowCeil.Load() {
		r.wLowCeil.Store(int64(low))
	}
	err := r.s.SetWatermark(d, low, high)
	r.expect(fmt.Sprintf("SetWatermark(%v, %d, %d)", d, low, high), err, valid)
	if err != nil {
		return
	}
	if d&actor.Read != 0 {
		r.curLow, r.curHigh = low, high
	}
	if d&actor.Write != 0 {
		r.wLow, r.wHigh = low, high
	}
	r.checkWatermarks()
}

// checkWatermarks checks that Watermark reports what was set last: a
// goroutine sees its own settings at once, and after a stop too.
func (r *soRun) checkWatermarks() {
	for _, w := range []struct {
		d         actor.Dir
		low, high int
	}{{actor.Read, r.curLow, r.curHigh}, {actor.Write, r.wLow, r.wHigh}} {
		low, high, err := r.s.Watermark(w.d)
		if err != nil || low != w.low || high != w.high {
			r.Errorf("Watermark(%v) = %d, %d, %v, want %d, %d, nil", w.d, low, high, err, w.low, w.high)
		}
	}
}

// setMax runs SetMaxRead or SetMaxWrite and checks the getter.
func (r *soRun) setMax(read bool, n int) {
	set, get, model, what := r.s.SetMaxWrite, r.s.MaxWrite, &r.maxWrite, "SetMaxWrite"
	def := actor.DefaultMaxWrite
	if read {
		set, get, model, what = r.s.SetMaxRead, r.s.MaxRead, &r.maxRead, "SetMaxRead"
		def = actor.DefaultMaxRead
	}
	err := set(n)
	r.expect(fmt.Sprintf("%s(%d)", what, n), err, n >= 0)
	if err == nil {
		*model = n
		if n == 0 {
			*model = def
		}
	}
	if got := get(); got != *model {
		r.Errorf("after %s(%d) = %v the getter says %d, want %d", what, n, err, got, *model)
	}
}

// soRates are the rate limits a program picks from: none; one that never
// runs dry in a program (the bucket starts full); one that runs dry
// after 4 KiB in either direction until the manual clock moves a tick
// (1 ms) on, or the limit is removed.
var soRates = [...]*limiter.Config{
	nil,
	{ReadRate: 1 << 30, ReadBurst: 1 << 30, WriteRate: 1 << 30, WriteBurst: 1 << 30, Tick: time.Millisecond},
	{ReadRate: 4 << 10, ReadBurst: 4 << 10, WriteRate: 4 << 10, WriteBurst: 4 << 10, Tick: time.Millisecond},
}

// setRateLimit gives the socket rate limit i of soRates, and checks the
// getter while the socket is certainly open.
func (r *soRun) setRateLimit(i byte) {
	var cfg *limiter.Config
	if c := soRates[i]; c != nil {
		cp := *c
		cfg = &cp
	}
	err := r.s.SetRateLimit(cfg)
	r.expect("SetRateLimit", err, true)
	if err != nil || r.state.Load() != soAlive {
		// Once stopped, a socket has no bucket: RateLimit is not among
		// the getters of settings that go on reporting what was set.
		return
	}
	got := r.s.RateLimit()
	if cfg == nil && got != nil || cfg != nil && (got == nil || *got != *cfg) {
		r.Errorf("RateLimit() = %+v after SetRateLimit(%+v)", got, cfg)
	}
}

// drain starts a Drain in the background and checks its result when it
// returns: nil means all accepted before it was written; an error is
// allowed only once the peer closed or reset, or something else closed
// the socket.
func (r *soRun) drain() {
	strict := r.state.Load() == soAlive && !r.halfClosed.Load() && !r.drainStarted
	if r.drainStarted {
		// This Drain closes the socket when it is done, which may be
		// before an earlier one's message was taken: that one then
		// returns the stream's first failure, if any (its goroutine may
		// run late), as a Drain that any other Close cuts short does.
		r.otherClose.Store(true)
	}
	r.drainStarted = true
	before := r.sent
	r.makeUncertain()
	r.halfClosed.Store(true)
	r.drains.Add(1)
	go func() {
		defer r.drains.Done()
		ctx, cancel := context.WithTimeout(context.Background(), soWait)
		defer cancel()
		err := r.s.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			r.Errorf("Drain did not finish within %v: %v", soWait, err)
		case !strict || r.otherClose.Load():
		case err == nil:
			if w := r.s.Written(); w < int64(before) {
				r.Errorf("Drain() = nil but Written() = %d of the %d bytes accepted before it", w, before)
			}
		case r.peer.broken.Load() && (errors.Is(err, actor.ErrOutputLost) || soBroken(err)):
		default:
			r.Errorf("Drain() = %v (peer closed or reset: %v), want nil, or ErrOutputLost after the peer closed", err, r.peer.broken.Load())
		}
	}()
}

// record takes bytes the socket received and checks them against the
// peer's stream and what the peer's kernel took.
func (r *soRun) record(p []byte, where string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) > 0 && r.atEnd {
		r.Errorf("%s delivered %d bytes after the end of the read side", where, len(p))
	}
	for i, c := range p {
		if want := testkit.UniqueByte(soPeerID, r.got+i); c != want {
			r.Errorf("%s: byte %d of the peer's stream is %#x, want %#x (%d bytes delivered)", where, r.got+i, c, want, len(p))
			break
		}
	}
	r.got += len(p)
}

// take reads n bytes of in and records them.
func (r *soRun) take(in *actor.Buffer, n int, where string) {
	p := make([]byte, n)
	k, err := in.Read(p)
	if n > 0 && (err != nil || k != n) {
		r.Errorf("%s: input Read(%d) = %d, %v", where, n, k, err)
	}
	r.record(p[:k], where)
}

// markEnded records the end of the read side.
func (r *soRun) markEnded() { r.endOnce.Do(func() { close(r.ended) }) }

// deferred reports whether callbacks wait for a turn (DeferCallbacks), so
// that the state they see may have moved on since they were asked for.
func (r *soRun) deferred() bool { return r.prog.opts&actor.DeferCallbacks != 0 }

// enter is what every callback does first: no callback may run after
// Close returned.
func (r *soRun) enter(what string) {
	if r.closedRet.Load() {
		r.Errorf("%s callback ran after Close returned", what)
	}
}

// onRead is the Read callback.
func (r *soRun) onRead(s *actor.Session) {
	r.enter("read")
	in := s.Input()
	r.checkBound(in.Len(), "read callback")
	triggered := r.readTriggered.Load()
	style := r.prog.style
	if !triggered && (style == soCallback || style == soPoll && !r.deferred()) {
		if floor := r.lowFloor.Load(); in.Len() == 0 || int64(in.Len()) < floor {
			r.Errorf("read callback with %d bytes of input, below the read low watermark (floor %d)", in.Len(), floor)
		}
	}
	switch style {
	case soChannel:
		r.Errorf("read callback ran for an In user")
	case soCallback:
		n := in.Len()
		if c := r.prog.cbChunk; c > 0 && !r.draining.Load() {
			n = min(n, c)
		}
		r.take(in, n, "read callback")
	}
	testkit.Signal(r.readable)
}

// onWrite is the Write callback.
func (r *soRun) onWrite(s *actor.Session) {
	r.enter("write")
	if !r.deferred() {
		if n, ceil := s.Output().Len(), r.wLowCeil.Load(); int64(n) > ceil {
			r.Errorf("write callback with %d bytes of output, above the write low watermark (at most %d)", n, ceil)
		}
	}
}

// onEvent is the Event callback.
func (r *soRun) onEvent(s *actor.Session, ev actor.Event, err error) {
	r.enter("event")
	r.checkEvent(ev, err, "event callback", &r.cbCounts, r.deferred(), s.Input())
	if ev&(actor.EOF|actor.Error) != 0 && ev&actor.Reading != 0 && r.prog.style != soChannel {
		if r.prog.style == soCallback {
			r.take(s.Input(), s.Input().Len(), "end-of-stream callback")
			r.mu.Lock()
			r.atEnd = true
			r.mu.Unlock()
		}
		r.noteReadEnd(ev, err, r.deferred())
		r.markEnded()
	}
	testkit.Signal(r.readable)
}

// noteReadEnd records how the read side ended, if ev says it did: the
// event callback's view for the poll and callback styles, Events' for
// the channel style. Deferred events may be ORed together with the first
// one's cause, so their cause is not kept.
func (r *soRun) noteReadEnd(ev actor.Event, err error, deferred bool) {
	if ev&actor.Reading == 0 || ev&(actor.EOF|actor.Error) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev&actor.EOF != 0 {
		r.sawEOF = true
	}
	if soReadError(ev, deferred) {
		r.sawReadErr = true
		if !deferred && r.endErr == nil {
			r.endErr = err
		}
	}
}

// soReadError reports whether ev reports a read error. Deferred events
// may come ORed together (with the first one's cause): Reading|Error then
// may be a Writing|Error and a Reading|EOF, or a Reading|Timeout, so only
// a set with neither EOF nor Writing counts.
func soReadError(ev actor.Event, deferred bool) bool {
	return ev&(actor.Reading|actor.Error) == actor.Reading|actor.Error &&
		(!deferred || ev&(actor.EOF|actor.Writing) == 0)
}

// checkEvent checks an event from the callback or from Events; deferred
// events may come ORed together, with the first one's cause. in is the
// input, seen from the event callback, or nil.
func (r *soRun) checkEvent(ev actor.Event, err error, where string, counts *soCounts, deferred bool, in *actor.Buffer) {
	p := r.peer
	if ev&actor.Connected != 0 {
		r.Errorf("%s: %v on a socket made over a connection", where, ev)
	}
	if ev&actor.EOF != 0 {
		if n := counts.eof.Add(1); n > 1 {
			r.Errorf("%s: EOF reported %d times (%v, %v)", where, n, ev, err)
		}
		if ev&actor.Reading == 0 || !deferred && !errors.Is(err, io.EOF) {
			r.Errorf("%s: %v with %v, want Reading|EOF with io.EOF", where, ev, err)
		}
		if !p.fin.Load() {
			r.Errorf("%s: %v though the peer sent no FIN (reset without one first: %v)", where, ev, p.resetNoFIN.Load())
		}
	}
	if ev&actor.Error != 0 {
		if ev&(actor.Reading|actor.Writing) == 0 {
			r.Errorf("%s: %v (%v) names no direction, on a socket made over a connection", where, ev, err)
		}
		if soReadError(ev, deferred) {
			if n := counts.readErr.Add(1); n > 1 {
				r.Errorf("%s: read error reported %d times (%v, %v)", where, n, ev, err)
			}
			if !p.broken.Load() {
				r.Errorf("%s: %v (%v) though the peer neither closed nor reset", where, ev, err)
			}
			if !deferred && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				r.Errorf("%s: %v with %v, want a reset", where, ev, err)
			}
		}
		if ev&actor.Writing != 0 {
			if n := counts.writeErr.Add(1); n > 1 {
				r.Errorf("%s: write failure reported %d times (%v, %v)", where, n, ev, err)
			}
			if !deferred && !soBroken(err) {
				r.Errorf("%s: %v with %v, want a reset or a broken pipe", where, ev, err)
			}
			if !r.mayFailWrites() {
				r.Errorf("%s: %v (%v) though its peer is open and it did not half-close", where, ev, err)
			}
		}
	}
	if ev&actor.Timeout != 0 {
		// A read timeout does not run while the input is at the high
		// watermark; input cannot grow while it runs (progress disarms
		// it), so when it fires the input is below the highest mark.
		if b := r.bound.Load(); in != nil && !deferred && ev&actor.Reading != 0 && b > 0 && int64(in.Len()) >= b {
			r.Errorf("%s: %v with %d bytes of input, at the read high watermark (at most %d)", where, ev, in.Len(), b)
		}
		if !r.timeoutsDue.Load() {
			r.Errorf("%s: %v but no timeout was set before the clock moved (set: %v)", where, ev, r.timeoutsSet.Load())
		}
		if !deferred && (ev&(actor.Reading|actor.Writing) == 0 || ev&(actor.Reading|actor.Writing) == actor.Reading|actor.Writing || !errors.Is(err, actor.ErrTimeout)) {
			r.Errorf("%s: %v with %v, want one direction and ErrTimeout", where, ev, err)
		}
	}
}

// The peer's operations.

// write writes the next bytes of the peer's stream, what the kernel takes
// at once.
func (p *soPeer) write(n int) {
	n = min(n, soBudget-p.written)
	if !p.open || p.fin.Load() || n == 0 {
		return // after its own half-close a write fails (EPIPE)
	}
	k, err, cerr := p.once(p.rc.Write, syscall.Write, testkit.UniqueAt(soPeerID, p.written, n))
	if cerr != nil {
		p.r.Errorf("peer: RawConn.Write() = %v on an open connection", cerr)
		return
	}
	switch {
	case err == nil:
		p.written += k
	case err == syscall.EAGAIN:
	case soBroken(err):
		// The socket closed with unread input (a reset), or it
		// half-closed and then closed: only a stopped socket does that.
		if p.r.state.Load() == soAlive {
			p.r.Errorf("peer: write = %v though the socket is open", err)
		}
	default:
		p.r.Errorf("peer: write = %v", err)
	}
}

// once makes one call of sys (syscall.Read or syscall.Write) on b through
// the peer's raw connection's rc (its Read or Write), retried only on
// EINTR and never waiting for readiness; cerr is the raw connection's own
// error.
func (p *soPeer) once(rc func(func(uintptr) bool) error, sys func(int, []byte) (int, error), b []byte) (k int, err, cerr error) {
	cerr = rc(func(fd uintptr) bool {
		for {
			k, err = sys(int(fd), b)
			if err != syscall.EINTR {
				return true // never wait
			}
		}
	})
	return k, err, cerr
}

// read reads up to n bytes of the socket's stream, what the kernel has at
// once.
func (p *soPeer) read(n int) {
	if !p.open || p.readEnd || n == 0 {
		return
	}
	b := make([]byte, n)
	k, err, cerr := p.once(p.rc.Read, syscall.Read, b)
	if cerr != nil {
		p.r.Errorf("peer: RawConn.Read() = %v on an open connection", cerr)
		return
	}
	switch {
	case err == syscall.EAGAIN:
	case err != nil:
		p.ended(err)
	case k == 0:
		p.ended(io.EOF)
	default:
		p.record(b[:k])
	}
}

// record takes bytes the peer read and checks them against the socket's
// stream.
func (p *soPeer) record(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eof || p.endErr != nil {
		p.r.Errorf("peer: read %d bytes after the end of the stream", len(b))
	}
	for i, c := range b {
		if want := testkit.UniqueByte(soSocketID, p.got+i); c != want {
			p.r.Errorf("peer: byte %d of the socket's stream is %#x, want %#x (%d bytes read)", p.got+i, c, want, len(b))
			break
		}
	}
	p.got += len(b)
}

// ended records how the peer's reading ended: a clean EOF, or an error,
// which only a socket that stopped with unread input (a reset) causes.
func (p *soPeer) ended(err error) {
	p.readEnd = true
	p.mu.Lock()
	defer p.mu.Unlock()
	if errors.Is(err, io.EOF) {
		p.eof = true
		return
	}
	p.endErr = err
	if !soBroken(err) {
		p.r.Errorf("peer: read = %v, want EOF or a reset", err)
	}
	if p.r.state.Load() == soAlive {
		p.r.Errorf("peer: read = %v though the socket is open: only a socket that stops resets", err)
	}
}

// closeWrite half-closes the peer: the socket may read EOF from then on.
func (p *soPeer) closeWrite() {
	if !p.open {
		return
	}
	p.fin.Store(true)
	var err error
	switch c := p.c.(type) {
	case *net.TCPConn:
		err = c.CloseWrite()
	case *net.UnixConn:
		err = c.CloseWrite()
	}
	if err != nil && !soBroken(err) {
		p.r.Errorf("peer: CloseWrite() = %v", err)
	}
}

// close closes the peer, with a reset when asked to on TCP (SO_LINGER 0:
// an RST, and its unsent bytes dropped). A close is a FIN, or a reset
// when the peer has unread input; a Unix socket is only closed.
func (p *soPeer) close(reset bool) {
	if !p.open {
		return
	}
	p.open = false
	if !reset || !p.tcp {
		p.fin.Store(true)
	} else if !p.fin.Load() {
		p.resetNoFIN.Store(true)
	}
	p.broken.Store(true)
	var err error
	if reset {
		err = netwrap.Reset(p.c)
	} else {
		err = p.c.Close()
	}
	if err != nil {
		p.r.Errorf("peer: close (reset %v) = %v", reset, err)
	}
}

// finish delivers what is deliverable: the socket, if nothing closed it,
// gets its timeouts and rate limit cleared, reading and writing enabled
// and its write side finished; the peer, if open, half-closes and reads
// to its end of stream while the test consumes the socket's input to its
// end; then it joins the Drains, closes the Base and checks.
func (r *soRun) finish() {
	open := r.state.Load() != soClosed
	if open {
		r.SetDoing("final phase: enabling the socket")
		// Bytes written after an earlier half-close may be lost without
		// a failure to show for it until a write is tried; only the
		// final half-close below proves that all came before it.
		r.openAtFinish = r.state.Load() == soAlive
		r.aliveAtFinish = r.openAtFinish && !r.halfClosed.Load()
		r.draining.Store(true)
		err := r.s.SetTimeouts(0, 0)
		r.expect("SetTimeouts(0, 0)", err, true)
		if err == nil {
			r.rto, r.wto = 0, 0
		}
		r.expect("SetRateLimit(nil)", r.s.SetRateLimit(nil), true)
		// A tiny read high watermark would take thousands of turns.
		high := r.curHigh
		if high > 0 {
			high = max(high, 4<<10)
		}
		r.setWatermark(actor.Read, 0, high)
		r.enableRead()
		r.expect("Enable(Read|Write)", r.s.Enable(actor.Read|actor.Write), true)
		if r.prog.style == soCallback {
			// A read callback that took only part of the input is not
			// run again until more comes.
			r.readTriggered.Store(true)
			r.expect("Trigger(Read)", r.s.Trigger(actor.Read, actor.TriggerIgnoreWatermarks), true)
		}
		r.halfClosed.Store(true)
		r.expect("Flush(Write, Finished)", r.s.Flush(actor.Write, actor.Finished), true)
	}
	p := r.peer
	peerDone := make(chan struct{})
	if p.open && !p.readEnd {
		r.SetDoing("final phase: the peer half-closes")
		p.closeWrite()
		go func() {
			defer close(peerDone)
			p.readToEnd()
		}()
	} else {
		if p.open {
			p.closeWrite()
		}
		close(peerDone)
	}
	if open {
		r.SetDoing("final phase: awaiting the end of the socket's input")
		r.awaitEnd()
	}
	r.SetDoing("final phase: awaiting the end of the peer's input")
	select {
	case <-peerDone:
	case <-time.After(soWait + time.Second):
		r.Fatalf("the peer's reader did not return")
	}
	r.SetDoing("final phase: joining the Drains")
	drained := make(chan struct{})
	go func() {
		r.drains.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(soWait):
		r.Fatalf("a Drain did not return within %v after both sides read their end of stream", soWait)
	}
	failed := testkit.Closed(r.s.Failed())
	r.pollEvents()
	r.SetDoing("final phase: closing")
	r.closeAll()
	r.checkClosed()
	r.checkDelivery(failed)
	r.SetDoing("final phase: goroutines")
	if err := goleak.Find(r.ignore); err != nil {
		r.Errorf("goroutines left after the Base was closed: %v", err)
	}
}

// readToEnd is the peer's final reader: it reads, waiting, until the end
// of the socket's stream or an error, within soWait.
func (p *soPeer) readToEnd() {
	p.c.SetReadDeadline(time.Now().Add(soWait))
	b := make([]byte, 64<<10)
	for {
		n, err := p.c.Read(b)
		if n > 0 {
			p.record(b[:n])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.r.Errorf("peer: no end of stream within %v (read %d, the socket's Written() = %d)", soWait, p.received(), p.r.s.Written())
			return
		}
		if err != nil {
			p.ended(err)
			return
		}
	}
}

// received returns how many bytes the peer read.
func (p *soPeer) received() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got
}

// awaitEnd consumes the socket's input until its read side ended (EOF or
// error) or it stopped.
func (r *soRun) awaitEnd() {
	timer := time.NewTimer(soWait)
	defer timer.Stop()
	for {
		switch r.prog.style {
		case soPoll:
			if !r.tryReadAll() {
				return // stopped
			}
			if testkit.Closed(r.ended) {
				// Everything before the end came before it: what the
				// read after it found was the last.
				r.complete = r.tryReadAll()
				return
			}
			select {
			case <-r.readable:
			case <-r.ended:
			case <-r.s.Done():
				return
			case <-timer.C:
				r.Fatalf("no end of the socket's input within %v (received %d, the peer wrote %d)", soWait, r.received(), r.peer.written)
			}
		case soCallback:
			select {
			case <-r.ended:
				r.complete = true
				return
			case <-r.s.Done():
				return
			case <-timer.C:
				r.Fatalf("no end of the socket's input within %v (received %d, the peer wrote %d)", soWait, r.received(), r.peer.written)
			}
		case soChannel:
			if r.in == nil {
				return
			}
			select {
			case p, ok := <-r.in:
				if !ok {
					r.inClosed()
					return
				}
				r.record(p, "In")
			case <-timer.C:
				r.Fatalf("In not closed within %v (received %d, the peer wrote %d)", soWait, r.received(), r.peer.written)
			}
			r.pollEvents()
		}
	}
}

// tryReadAll calls TryRead until the input is empty; it reports false if
// the socket stopped.
func (r *soRun) tryReadAll() bool {
	p := make([]byte, 64<<10)
	for {
		n, err := r.s.TryRead(p)
		if err != nil {
			if !errors.Is(err, actor.ErrClosed) || r.state.Load() == soAlive {
				r.Errorf("TryRead() = %d, %v", n, err)
			}
			return false
		}
		if n == 0 {
			return true
		}
		r.record(p[:n], "TryRead")
	}
}

// received returns how many bytes the socket received.
func (r *soRun) received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got
}

// closeAll closes the Base, whose Close joins the socket, and then the
// peer.
func (r *soRun) closeAll() {
	if err := r.base.Close(); err != nil {
		r.Errorf("Base.Close() = %v, want nil", err)
	}
	if !testkit.Closed(r.s.Done()) {
		r.Errorf("Done() not closed after Base.Close returned")
	}
	if err := r.s.Close(); err != nil {
		r.Errorf("Close() after Base.Close = %v, want nil", err)
	}
	r.closedRet.Store(true)
	r.state.Store(soClosed)
	if r.peer.open {
		r.peer.open = false
		r.peer.c.Close()
	}
}

// checkClosed checks the closed socket: every method returns at once with
// ErrClosed or its zero result, the channels are closed, and the settings
// getters report what was set.
func (r *soRun) checkClosed() {
	r.SetDoing("final phase: methods of the closed socket")
	s := r.s
	closed := func(what string, err error) {
		if !errors.Is(err, actor.ErrClosed) {
			r.Errorf("%s after Close = %v, want ErrClosed", what, err)
		}
	}
	closed("Write", s.Write([]byte("x")))
	var buf actor.Buffer
	buf.WriteString("x")
	closed("WriteBuffer", s.WriteBuffer(&buf))
	closed("Send", s.Send(context.Background(), []byte("x")))
	n, err := s.TryRead(make([]byte, 8))
	closed("TryRead", err)
	if n != 0 {
		r.Errorf("TryRead after Close = %d bytes", n)
	}
	closed("ReadBuffer", s.ReadBuffer(&buf))
	closed("Do", s.Do(func(*actor.Session) { r.Errorf("Do ran after Close") }))
	closed("Enable", s.Enable(actor.Read))
	closed("Flush", s.Flush(actor.Write, actor.Finished))
	closed("SetTimeouts", s.SetTimeouts(time.Second, 0))
	closed("SetRateLimit", s.SetRateLimit(nil))
	closed("ConnectAddr", s.ConnectAddr(context.Background(), "tcp", "127.0.0.1:1"))
	if in, out, tr := s.InputLen(), s.OutputLen(), s.Transport(); in != 0 || out != 0 || tr != nil {
		r.Errorf("after Close InputLen, OutputLen, Transport = %d, %d, %v; want zeros", in, out, tr)
	}
	// Also when an Enable raced a stop of the socket's own (a Drain's, a
	// Free's): seed enable_races_drain_stop.
	if d := s.Enabled(); d != 0 {
		r.Errorf("after Close Enabled() = %v, want 0", d)
	}
	if err := s.Err(); err == nil {
		r.Errorf("Err() = nil after Close")
	}
	if !testkit.Closed(s.Failed()) {
		r.Errorf("Failed not closed after Close")
	}
	if r.in != nil {
		for {
			p, ok := <-r.in // closed: bounded by what it holds
			if !ok {
				break
			}
			r.record(p, "In after Close")
		}
		r.in = nil
	}
	if r.evs != nil {
		for ev := range r.evs { // closed: bounded by what it holds
			r.checkEvent(ev.Event, ev.Err, "Events", &r.chCounts, false, nil)
			r.noteReadEnd(ev.Event, ev.Err, false)
		}
		r.evs = nil
	}
	r.checkWatermarks()
	if rto, wto := s.Timeouts(); rto != r.rto || wto != r.wto {
		r.Errorf("Timeouts() = %v, %v after Close, want %v, %v", rto, wto, r.rto, r.wto)
	}
	if mr, mw := s.MaxRead(), s.MaxWrite(); mr != r.maxRead || mw != r.maxWrite {
		r.Errorf("MaxRead, MaxWrite = %d, %d after Close, want %d, %d", mr, mw, r.maxRead, r.maxWrite)
	}
}

// checkDelivery checks, once everything is closed, what each side
// received of the other's stream against what the other's kernel took
// and what it accepted, and how a reset ended the socket's read side.
func (r *soRun) checkDelivery(failed bool) {
	p := r.peer
	w := r.s.Written()
	pGot, pEOF := p.received(), func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.eof }()
	if w > int64(r.sent) {
		r.Errorf("Written() = %d, more than the %d bytes accepted", w, r.sent)
	}
	if int64(pGot) > w {
		r.Errorf("the peer read %d bytes, more than the socket's Written() = %d", pGot, w)
	}
	if pEOF && int64(pGot) != w {
		r.Errorf("the peer read a clean EOF after %d bytes, but the socket's Written() = %d", pGot, w)
	}
	if pEOF && r.aliveAtFinish && !failed && pGot != r.sent {
		r.Errorf("the socket stayed open and its output never failed, but the peer read EOF after %d of the %d bytes it accepted (Written %d)",
			pGot, r.sent, w)
	}
	if r.aliveAtFinish && !failed && !p.broken.Load() && !pEOF {
		r.Errorf("the socket stayed open and finished its write side, its peer stayed open, but the peer read no EOF (read %d of %d)", pGot, r.sent)
	}

	r.mu.Lock()
	got, sawEOF, sawReadErr, endErr := r.got, r.sawEOF, r.sawReadErr, r.endErr
	r.mu.Unlock()
	if got > p.written {
		r.Errorf("the socket received %d bytes, more than the peer wrote (%d)", got, p.written)
	}
	if sawEOF && r.complete && !r.drainStarted && got != p.written {
		r.Errorf("the socket read a clean EOF after %d bytes, but the peer wrote %d", got, p.written)
	}
	if r.openAtFinish && !p.broken.Load() && (!sawEOF || !r.complete) {
		r.Errorf("the socket stayed open and its peer half-closed, but it did not read to EOF (received %d of %d, EOF %v, error %v)",
			got, p.written, sawEOF, endErr)
	}
	// With deferred events a read error ORed with a write failure is
	// not told apart from one alone: it must then at least not be an EOF.
	if r.openAtFinish && p.resetNoFIN.Load() && (sawEOF || !r.deferred() && (!sawReadErr || !errors.Is(endErr, syscall.ECONNRESET))) {
		r.Errorf("the peer reset the connection, but the socket's read side ended with EOF %v, error %v (%v); want an error wrapping ECONNRESET",
			sawEOF, sawReadErr, endErr)
	}
}
