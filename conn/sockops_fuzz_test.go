package conn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/bevgo/bev/internal/opsmodel"
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
	style    opsmodel.Style
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
		style:    opsmodel.DecodeStyle(h[0]),
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
		return fmt.Sprintf("Enable(%v)", opsmodel.Dir(op.a))
	case soDisable:
		return fmt.Sprintf("Disable(%v)", opsmodel.Dir(op.a))
	case soWatermark:
		return fmt.Sprintf("SetWatermark(%v, %d, %d)", opsmodel.Dir(op.a), opsmodel.Low(op.b), opsmodel.High(op.c))
	case soFlush:
		return fmt.Sprintf("Flush(%v, %v)", opsmodel.Dir(op.a), opsmodel.Mode(op.b))
	case soMax:
		return fmt.Sprintf("%s(%d)", [...]string{"SetMaxWrite", "SetMaxRead"}[op.a&1], opsmodel.MaxIO(op.b))
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

// soRun is one run of a program: opsmodel's model of the socket, what
// that model asks of the peer (soRun is the End's Far) and what only a
// socket has (a clock, a rate limit, a read side a reset may end). Its
// methods run on the run goroutine, but for the callbacks (onRead,
// onWrite, onEvent), which run on the actor, and the Drains' and the
// final peer reader's goroutines. The plain fields are the run
// goroutine's; the atomics are shared with the callbacks.
type soRun struct {
	testkit.Run
	opsmodel.End
	prog   soProgram
	ignore goleak.Option // the goroutines from before the run
	clock  *testbev.ManualClock
	base   *actor.Base
	s      *conn.Socket
	peer   *soPeer
	drains sync.WaitGroup

	openAtFinish bool        // open and never closing when the program ended
	timeoutsDue  atomic.Bool // a timeout was set and the clock moved since

	mu         sync.Mutex // guards following
	endErr     error      // the cause of a read error the socket reported (not deferred)
	sawReadErr bool       // the socket reported Reading|Error
	sawEOF     bool       // the socket reported Reading|EOF
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
		r.CheckBound(r.s.InputLen(), "InputLen()")
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
	r.Init(r.s.Bufferevent, opsmodel.Config{
		Style:     r.prog.style,
		Deferred:  r.prog.opts&actor.DeferCallbacks != 0,
		CBChunk:   r.prog.cbChunk,
		Stream:    soSocketID,
		FarStream: soPeerID,
		Budget:    soBudget,
		Wait:      soWait,
		What:      "a socket made over a connection",
	}, &r.Run, r, &r.drains, actor.DefaultMaxRead, actor.DefaultMaxWrite)
	if r.prog.small {
		r.SetMax(false, soSmallMaxWrite)
	}
	r.setCallbacks()
	if r.prog.style == opsmodel.Channel {
		r.EnableRead()
		r.In = r.s.In()
		r.Evs = r.s.Events()
	}
}

// setCallbacks sets the socket's callbacks: a write callback only when
// the program asks for one, since a socket with one never lends its sink.
func (r *soRun) setCallbacks() {
	cbs := actor.Callbacks{Read: r.ReadCallback, Event: r.onEvent}
	if r.prog.writeCB {
		cbs.Write = r.WriteCallback
	}
	r.s.SetCallbacks(cbs)
}

// cleanup closes the Base, the socket and the peer and joins the Drains:
// after a finished run it finds everything closed already.
func (r *soRun) cleanup() {
	r.SetDoing("cleanup")
	r.OtherClose.Store(true) // a Drain still waiting is cut short
	if r.base != nil {
		r.base.Close()
	}
	if r.s != nil {
		r.s.Close()
		r.State.Store(opsmodel.Closed)
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
		r.WriteNext(int(op.c%3), soSize(op.a, op.b), op.c&4 != 0)
	case soRead:
		r.Consume(soSize(op.a, op.b), op.c&0x40 != 0, soTrigOpt(op.c), int(op.a%4)+1)
	case soEnable:
		r.Enable(opsmodel.Dir(op.a))
	case soDisable:
		r.Disable(opsmodel.Dir(op.a))
	case soWatermark:
		r.SetWatermark(opsmodel.Dir(op.a), opsmodel.Low(op.b), opsmodel.High(op.c))
	case soFlush:
		r.Flush(opsmodel.Dir(op.a), opsmodel.Mode(op.b))
	case soMax:
		n := opsmodel.MaxIO(op.b)
		if n == 0 && r.prog.small && op.a&1 == 0 {
			n = soSmallMaxWrite // not the default, which small buffers make crawl
		}
		r.SetMax(op.a&1 != 0, n)
	case soTimeouts:
		rto, wto := soTimeout(op.a), soTimeout(op.b)
		err := r.SetTimeouts(rto, wto)
		if got, gotW := r.s.Timeouts(); got != r.RTO || gotW != r.WTO {
			r.Errorf("Timeouts() = %v, %v after SetTimeouts(%v, %v) = %v, want %v, %v", got, gotW, rto, wto, err, r.RTO, r.WTO)
		}
	case soAdvance:
		d := soStep(op.a)
		if d > 0 && r.TimeoutsSet.Load() {
			r.timeoutsDue.Store(true)
		}
		r.clock.Advance(d)
	case soRateLimit:
		r.setRateLimit(op.a % 3)
	case soDrain:
		if r.DrainStarted {
			// This Drain closes the socket when it is done, which may be
			// before an earlier one's message was taken: that one then
			// returns the stream's first failure, if any (its goroutine may
			// run late), as a Drain that any other Close cuts short does.
			r.OtherClose.Store(true)
		}
		r.Drain()
	case soClose:
		r.Close("")
	case soFree:
		r.MakeUncertain()
		r.OtherClose.Store(true)
		r.s.Free()
	case soTurn:
		err := r.s.Do(func(*actor.Session) {})
		r.Expect("Do", err, true)
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

// String describes the peer's state, for the model's messages (Far).
func (r *soRun) String() string { return fmt.Sprintf("peer broken %v", r.peer.broken.Load()) }

// MayFailWrites reports whether a write failure is allowed: the peer
// closed or reset, or the socket asked for its half-close (Far).
func (r *soRun) MayFailWrites() bool { return r.peer.broken.Load() || r.HalfClosed.Load() }

// WriteFailure reports whether err is how a write fails on a connection
// its peer closed or reset (Far).
func (r *soRun) WriteFailure(err error) bool { return soBroken(err) }

// DrainFailure reports whether a Drain may fail with err: once the peer
// closed or reset, with ErrOutputLost or the connection's failure (Far).
func (r *soRun) DrainFailure(err error) bool {
	return r.peer.broken.Load() && (errors.Is(err, actor.ErrOutputLost) || soBroken(err))
}

// Wrote returns what the peer's kernel took of its stream (Far); only the
// run goroutine may call it.
func (r *soRun) Wrote() int64 { return int64(r.peer.written) }

// FarEvent checks what of an event depends on the peer (Far): EOF only
// after the peer sent its FIN; an error names a direction; a read error
// at most once, only after the peer closed or reset, wrapping a reset;
// a timeout only when one was set and the clock moved since.
func (r *soRun) FarEvent(ev actor.Event, err error, where string, counts *opsmodel.Counts, deferred bool) {
	p := r.peer
	if ev&actor.EOF != 0 && !p.fin.Load() {
		r.Errorf("%s: %v though the peer sent no FIN (reset without one first: %v)", where, ev, p.resetNoFIN.Load())
	}
	if ev&actor.Error != 0 && ev&(actor.Reading|actor.Writing) == 0 {
		r.Errorf("%s: %v (%v) names no direction, on a socket made over a connection", where, ev, err)
	}
	if opsmodel.ReadError(ev, deferred) {
		if n := counts.ReadErr.Add(1); n > 1 {
			r.Errorf("%s: read error reported %d times (%v, %v)", where, n, ev, err)
		}
		if !p.broken.Load() {
			r.Errorf("%s: %v (%v) though the peer neither closed nor reset", where, ev, err)
		}
		if !deferred && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			r.Errorf("%s: %v with %v, want a reset", where, ev, err)
		}
	}
	if ev&actor.Timeout != 0 && !r.timeoutsDue.Load() {
		r.Errorf("%s: %v but no timeout was set before the clock moved (set: %v)", where, ev, r.TimeoutsSet.Load())
	}
}

// pollEvents takes the events Events has ready (channel style), and
// notes how the read side ended.
func (r *soRun) pollEvents() {
	r.PollEvents(func(ev actor.Event, err error) { r.noteReadEnd(ev, err, false) })
}

// checkLive checks what the getters say between operations: Written
// never decreases, and a socket that nothing could have closed or failed
// (open, never half-closed, its peer neither closed nor reset) has not
// stopped, has an open Failed, and an Err that is nil or, once the peer
// half-closed, io.EOF.
func (r *soRun) checkLive() {
	r.CheckWritten()
	if r.State.Load() != opsmodel.Alive {
		return
	}
	if testkit.Closed(r.s.Done()) {
		r.Errorf("the socket stopped on its own")
	}
	if r.HalfClosed.Load() || r.peer.broken.Load() {
		return
	}
	if err := r.s.Err(); err != nil && !(r.peer.fin.Load() && errors.Is(err, io.EOF)) {
		r.Errorf("Err() = %v though nothing ended its stream", err)
	}
	if testkit.Closed(r.s.Failed()) {
		r.Errorf("Failed() closed though its peer is open and it did not half-close")
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
	r.Expect("SetRateLimit", err, true)
	if err != nil || r.State.Load() != opsmodel.Alive {
		// Once stopped, a socket has no bucket: RateLimit is not among
		// the getters of settings that go on reporting what was set.
		return
	}
	got := r.s.RateLimit()
	if cfg == nil && got != nil || cfg != nil && (got == nil || *got != *cfg) {
		r.Errorf("RateLimit() = %+v after SetRateLimit(%+v)", got, cfg)
	}
}

// onEvent is the Event callback: an EOF or a read error ends the read
// side.
func (r *soRun) onEvent(s *actor.Session, ev actor.Event, err error) {
	r.Enter("event")
	r.CheckEvent(ev, err, "event callback", &r.CBCounts, r.Deferred(), s.Input())
	if ev&(actor.EOF|actor.Error) != 0 && ev&actor.Reading != 0 && r.prog.style != opsmodel.Channel {
		if r.prog.style == opsmodel.Callback {
			r.TakeRest(s.Input(), "end-of-stream callback")
		}
		r.noteReadEnd(ev, err, r.Deferred())
		r.MarkEnded()
	}
	testkit.Signal(r.Readable)
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
	if opsmodel.ReadError(ev, deferred) {
		r.sawReadErr = true
		if !deferred && r.endErr == nil {
			r.endErr = err
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
		if p.r.State.Load() == opsmodel.Alive {
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
	if off := testkit.UniqueMismatch(soSocketID, p.got, b); off >= 0 {
		p.r.Errorf("peer: byte %d of the socket's stream is %#x, want %#x (%d bytes read)", off, b[off-p.got], testkit.UniqueByte(soSocketID, off), len(b))
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
	if p.r.State.Load() == opsmodel.Alive {
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
	open := r.State.Load() != opsmodel.Closed
	if open {
		r.SetDoing("final phase: enabling the socket")
		// Bytes written after an earlier half-close may be lost without
		// a failure to show for it until a write is tried; only the
		// final half-close below proves that all came before it.
		r.openAtFinish = r.State.Load() == opsmodel.Alive
		r.AliveAtFinish = r.openAtFinish && !r.HalfClosed.Load()
		r.Draining.Store(true)
		r.ClearTimeouts()
		r.Expect("SetRateLimit(nil)", r.s.SetRateLimit(nil), true)
		// A tiny read high watermark would take thousands of turns.
		high := r.CurHigh
		if high > 0 {
			high = max(high, 4<<10)
		}
		r.EnableAll(high)
		r.FinishWrites()
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
		r.AwaitEnd(r.pollEvents)
	}
	r.SetDoing("final phase: awaiting the end of the peer's input")
	select {
	case <-peerDone:
	case <-time.After(soWait + time.Second):
		r.Fatalf("the peer's reader did not return")
	}
	r.SetDoing("final phase: joining the Drains")
	if !opsmodel.JoinDrains(&r.drains, soWait) {
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
	r.State.Store(opsmodel.Closed)
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
	r.CheckClosed()
	r.ExpectClosed("SetRateLimit", s.SetRateLimit(nil))
	r.ExpectClosed("ConnectAddr", s.ConnectAddr(context.Background(), "tcp", "127.0.0.1:1"))
	if in, out, tr := s.InputLen(), s.OutputLen(), s.Transport(); in != 0 || out != 0 || tr != nil {
		r.Errorf("after Close InputLen, OutputLen, Transport = %d, %d, %v; want zeros", in, out, tr)
	}
	// Also when an Enable raced a stop of the socket's own (a Drain's, a
	// Free's): seed enable_races_drain_stop.
	if d := s.Enabled(); d != 0 {
		r.Errorf("after Close Enabled() = %v, want 0", d)
	}
	if !testkit.Closed(s.Failed()) {
		r.Errorf("Failed not closed after Close")
	}
	if r.In != nil {
		for {
			p, ok := <-r.In // closed: bounded by what it holds
			if !ok {
				break
			}
			r.Record(p, "In after Close")
		}
		r.In = nil
	}
	if r.Evs != nil {
		for ev := range r.Evs { // closed: bounded by what it holds
			r.CheckEvent(ev.Event, ev.Err, "Events", &r.ChCounts, false, nil)
			r.noteReadEnd(ev.Event, ev.Err, false)
		}
		r.Evs = nil
	}
}

// checkDelivery checks, once everything is closed, what each side
// received of the other's stream against what the other's kernel took
// and what it accepted, and how a reset ended the socket's read side.
func (r *soRun) checkDelivery(failed bool) {
	p := r.peer
	w := r.s.Written()
	pGot, pEOF := p.received(), func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.eof }()
	d := opsmodel.Delivery{
		Written: w, Accepted: r.Sent, Received: pGot,
		EOF: pEOF, AliveAtFinish: r.AliveAtFinish, Failed: failed,
	}
	for _, bad := range d.Check() {
		r.Errorf("the socket writing to the peer: %s", bad)
	}
	if r.AliveAtFinish && !failed && !p.broken.Load() && !pEOF {
		r.Errorf("the socket stayed open and finished its write side, its peer stayed open, but the peer read no EOF (read %d of %d)", pGot, r.Sent)
	}

	got := r.Received()
	r.mu.Lock()
	sawEOF, sawReadErr, endErr := r.sawEOF, r.sawReadErr, r.endErr
	r.mu.Unlock()
	if got > p.written {
		r.Errorf("the socket received %d bytes, more than the peer wrote (%d)", got, p.written)
	}
	if sawEOF && r.Complete && !r.DrainStarted && got != p.written {
		r.Errorf("the socket read a clean EOF after %d bytes, but the peer wrote %d", got, p.written)
	}
	if r.openAtFinish && !p.broken.Load() && (!sawEOF || !r.Complete) {
		r.Errorf("the socket stayed open and its peer half-closed, but it did not read to EOF (received %d of %d, EOF %v, error %v)",
			got, p.written, sawEOF, endErr)
	}
	// With deferred events a read error ORed with a write failure is
	// not told apart from one alone: it must then at least not be an EOF.
	if r.openAtFinish && p.resetNoFIN.Load() && (sawEOF || !r.Deferred() && (!sawReadErr || !errors.Is(endErr, syscall.ECONNRESET))) {
		r.Errorf("the peer reset the connection, but the socket's read side ended with EOF %v, error %v (%v); want an error wrapping ECONNRESET",
			sawEOF, sawReadErr, endErr)
	}
}
