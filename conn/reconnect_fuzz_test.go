package conn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

// FuzzReconnect runs a program of up to rcMaxStreams streams on one
// socket (conn.New with no connection), each a fresh ConnectAddr to a
// fresh loopback listener, and checks every stream against a model of
// what the documentation promises for a reconnect. The fuzz input is
// decoded by rcDecode: a header byte (how the socket's input is consumed:
// the Read callback, the In channel, or TryRead; whether the socket ends
// with Free or Close) and up to rcMaxOps operations of two bytes each.
//
// The operations: socket writes of a known stream (testkit.UniqueAt);
// Enable and Disable of Read or Write; In (or Enable(Read) in the other
// styles); consuming input by the program's style; writes until the
// output fails, once the peer closed or reset; the peer's writes (its own
// stream per connection), half-close, close and reset (SO_LINGER 0);
// waiting for the end of the stream's read side; and the next connect,
// which first ends the current stream. After the program a last stream
// takes everything the output still holds, half-closed by
// Flush(Write, Finished), and the socket and its Base are closed.
//
// Checked for every stream:
//
//   - the input delivers exactly the peer's bytes, in order, and ends
//     with EOF only after the peer's FIN, having delivered all of them
//     (before the EOF event with a Read callback, before In is closed,
//     in the input for TryRead), or with an error wrapping ECONNRESET
//     only after the peer closed or reset;
//   - a write fails only after the peer closed or reset, with ECONNRESET
//     or EPIPE, and closes Failed; a peer that closed or reset makes the
//     writes fail before long;
//   - Err is nil right after Connected, and then the class (EOF, reset,
//     broken pipe) of the stream's first end;
//   - Failed is open after Connected, and a new channel when the one
//     before was closed; writing and reading stay disabled after a
//     reconnect when a failure and an end disabled them, no byte is
//     written before Enable(Write), and reading resumes only with In or
//     Enable(Read); In then returns a new channel;
//   - each peer reads a contiguous run of the socket's stream that starts
//     exactly where the transport before stopped taking bytes (Written
//     at the reconnect: what the output still held goes first); a peer
//     that read a clean end of stream read all its transport took; the
//     last peer reads everything up to the last byte written;
//   - Written never decreases; Close and the Base's Close return nil and
//     join every goroutine of the run (goleak), and the whole run ends
//     within rcWatchdog.
//
// What the kernel took but a peer that closed or reset never read is
// lost, as documented: only the bytes the output still held are promised
// to the next peer.
func FuzzReconnect(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		prog := rcDecode(data)
		r := &rcRun{Run: testkit.Run{T: t}, prog: prog, ignore: goleak.IgnoreCurrent()}
		r.Watch(rcWatchdog, r.run, prog, nil)
	})
}

// The bounds of a program and of its waits.
const (
	rcMaxOps     = 32
	rcMaxStreams = 4
	rcSockBudget = 48 << 10 // the most the socket writes in a run
	rcPeerBudget = 16 << 10 // the most a peer writes
	// rcWait bounds each wait for something the socket or a peer owes.
	rcWait = 3 * time.Second
	// rcWatchdog bounds a whole run.
	rcWatchdog = 10 * time.Second
	// rcBreakWrites bounds the writes made to get a failure from a peer
	// that closed or reset.
	rcBreakWrites = 1000
)

// rcStyle is how a program consumes the socket's input.
type rcStyle uint8

// The consumption styles.
const (
	rcCallback rcStyle = iota // the Read callback takes the input
	rcChannel                 // the test receives from In
	rcPoll                    // the test calls TryRead; the Read callback only signals
)

// rcKind is an operation of a program.
type rcKind uint8

// The operations; rcOp.String shows how their argument is decoded.
const (
	rcWrite rcKind = iota
	rcEnable
	rcDisable
	rcIn
	rcConsume
	rcBreak
	rcPeerWrite
	rcPeerCloseWrite
	rcPeerClose
	rcPeerReset
	rcAwaitEnd
	rcNext
	rcNumKinds
)

// rcOp is one decoded operation.
type rcOp struct {
	kind rcKind
	a    byte
}

// rcProgram is a decoded fuzz input.
type rcProgram struct {
	style rcStyle
	free  bool // the socket ends with Free, not Close
	ops   []rcOp
}

// rcDecode decodes a fuzz input; every input is a valid program.
func rcDecode(data []byte) rcProgram {
	var p rcProgram
	if len(data) > 0 {
		p.style, p.free = rcStyle(data[0]%3), data[0]&0x80 != 0
		data = data[1:]
	}
	for len(data) > 0 && len(p.ops) < rcMaxOps {
		var o [2]byte
		copy(o[:], data)
		data = data[min(len(data), 2):]
		p.ops = append(p.ops, rcOp{kind: rcKind(o[0] % byte(rcNumKinds)), a: o[1]})
	}
	return p
}

// String describes the program, for a failure's log.
func (p rcProgram) String() string {
	var sb strings.Builder
	sb.WriteString([...]string{"callback", "channel", "poll"}[p.style])
	sb.WriteString(map[bool]string{false: ", Close:", true: ", Free:"}[p.free])
	for _, op := range p.ops {
		sb.WriteString(" " + op.String() + ";")
	}
	return sb.String()
}

// rcOpNames are the operations' names; %d is a size, %v a direction,
// %s how a peer ends.
var rcOpNames = [...]string{"Write(%d)", "Enable(%v)", "Disable(%v)", "In", "consume(%d)", "write until Failed",
	"peer.Write(%d)", "peer.CloseWrite", "peer.Close", "peer.Reset", "awaitEnd(%s)", "reconnect(%s)"}

// String describes the operation with its decoded argument.
func (op rcOp) String() string {
	name := rcOpNames[op.kind]
	switch {
	case strings.HasSuffix(name, "(%d)"):
		return fmt.Sprintf(name, rcSize(op.a))
	case strings.HasSuffix(name, "(%v)"):
		return fmt.Sprintf(name, rcDir(op.a))
	case strings.HasSuffix(name, "(%s)"):
		return fmt.Sprintf(name, rcHow(op.a))
	}
	return name
}

// rcSize is a byte count from 32 to 2048.
func rcSize(a byte) int { return (int(a)%64 + 1) * 32 }

// rcDir is Read or Write.
func rcDir(a byte) actor.Dir { return [...]actor.Dir{actor.Read, actor.Write}[a&1] }

// rcHow names how an open peer ends its stream when the program ends it.
func rcHow(a byte) string { return [...]string{"CloseWrite", "Close", "Reset"}[a%3] }

// rcPeerID is the id of the test stream peer k writes; the socket writes
// stream 0 to every peer.
func rcPeerID(k int) int { return 100 + k }

// rcClass classifies a stream's end, for comparing Err with the event.
func rcClass(err error) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	return "other: " + err.Error()
}

// rcRun is one run of a program and the model. Its methods run on the
// run goroutine, but for onRead and onEvent, which run on the actor and
// touch only mu's fields, the channels and the atomics.
type rcRun struct {
	testkit.Run
	prog   rcProgram
	ignore goleak.Option
	base   *actor.Base
	s      *conn.Socket

	evs      chan actor.EventInfo // what the event callback saw
	readable chan struct{}        // the Read callback ran (poll style)
	readers  sync.WaitGroup       // the peers' readers

	streams []*rcStream
	st      *rcStream // the current stream
	sent    int       // bytes of stream 0 the socket's Writes accepted
	written int64     // Written() when last looked at
	readOn  bool      // the model: reading is enabled
	// connecting: a connect waits for its Connected.
	connecting bool
	writeOn    bool // the model: writing is enabled
	// nextLo and nextHi bound Written at the end of the current stream's
	// transport, from what its peer read: the next peer's first byte.
	nextLo, nextHi int64

	cur atomic.Pointer[rcStream] // the stream the Read callback records into
	mu  sync.Mutex               // guards rcStream.got
}

// rcStream is one connection: the socket's side in the model and the
// raw peer.
type rcStream struct {
	k         int
	peer      *net.TCPConn
	peerSent  int
	peerFIN   bool // CloseWrite or Close
	peerGone  bool // Close or reset: writes may fail, reads may see a reset
	failedC   <-chan struct{}
	in        <-chan []byte // In's channel in this stream; nil until asked
	inClosed  bool
	readEnded bool  // the read side's end event was seen
	endEOF    bool  // and it was EOF
	first     error // the first end: a read's end or a write's failure
	wFailed   bool  // a Writing|Error was seen
	readOnce  bool  // reading was enabled in this stream
	readRaced bool  // reading was enabled when an unseen end may have disabled it
	wRaced    bool  // writing was enabled when an unseen failure may have disabled it
	winLo     int64 // where the peer's first byte lies in stream 0
	winHi     int64

	got int // bytes of the peer's stream delivered; guarded by rcRun.mu

	rdDone chan struct{} // closed when the peer's reader returned
	rdData []byte        // what the peer read; the reader's until rdDone
	rdErr  error
}

// run runs the program and the final phase, and closes everything even
// when it ends early.
func (r *rcRun) run() {
	defer r.Recover()
	r.SetDoing("setup")
	r.base = actor.NewBase()
	defer r.cleanup()
	var err error
	if r.s, err = conn.New(r.base, nil, actor.CloseOnFree); err != nil {
		r.Fatalf("conn.New() = %v", err)
	}
	r.evs = make(chan actor.EventInfo, 1024)
	r.readable = make(chan struct{}, 1)
	r.writeOn, r.nextHi = true, math.MaxInt64
	cbs := actor.Callbacks{Event: r.onEvent}
	if r.prog.style != rcChannel {
		cbs.Read = r.onRead
	}
	r.s.SetCallbacks(cbs)
	r.connect()
	for i, op := range r.prog.ops {
		r.SetDoing("op %d: %v (stream %d)", i, op, r.st.k)
		r.step(op)
		r.pollEvents()
		r.checkLive()
	}
	r.finish()
}

// cleanup closes the Base, which joins the socket, and the peers, and
// joins the peers' readers.
func (r *rcRun) cleanup() {
	r.SetDoing("cleanup")
	r.base.Close()
	for _, st := range r.streams {
		st.peer.Close()
	}
	r.readers.Wait()
}

// onRead is the Read callback: it takes the input (callback style) or
// only signals that there is some (poll style).
func (r *rcRun) onRead(s *actor.Session) {
	if r.prog.style == rcPoll {
		testkit.Signal(r.readable)
		return
	}
	in := s.Input()
	p := make([]byte, in.Len())
	if n, err := io.ReadFull(in, p); err != nil {
		r.Errorf("read callback: input Read(%d) = %d, %v", len(p), n, err)
	}
	r.record(r.cur.Load(), p, "read callback")
}

// onEvent is the event callback: it hands the event to the run goroutine.
func (r *rcRun) onEvent(_ *actor.Session, ev actor.Event, err error) {
	select {
	case r.evs <- actor.EventInfo{Event: ev, Err: err}:
	default:
		r.Errorf("event %v %v: the test's event buffer is full", ev, err)
	}
}

// record checks bytes the socket delivered against stream st's peer.
func (r *rcRun) record(st *rcStream, p []byte, where string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off := testkit.UniqueMismatch(rcPeerID(st.k), st.got, p); off >= 0 {
		r.Errorf("stream %d: %s: byte %d of the peer's stream is %#x, want %#x (%d bytes delivered)",
			st.k, where, off, p[off-st.got], testkit.UniqueByte(rcPeerID(st.k), off), len(p))
	}
	st.got += len(p)
}

// delivered returns how many of its peer's bytes stream st delivered.
func (r *rcRun) delivered(st *rcStream) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return st.got
}

// turn waits for one turn of the actor.
func (r *rcRun) turn() {
	if err := r.s.Do(func(*actor.Session) {}); err != nil {
		r.Errorf("Do() = %v", err)
	}
}

// step runs one operation.
func (r *rcRun) step(op rcOp) {
	st := r.st
	switch op.kind {
	case rcWrite:
		r.write(rcSize(op.a))
	case rcEnable:
		if rcDir(op.a) == actor.Read {
			r.enableRead()
		} else {
			r.enableWrite()
		}
	case rcDisable:
		d := rcDir(op.a)
		if err := r.s.Disable(d); err != nil {
			r.Errorf("Disable(%v) = %v", d, err)
		}
		if d == actor.Read {
			r.readOn = false
		} else {
			r.writeOn = false
		}
	case rcIn:
		if r.prog.style == rcChannel {
			r.callIn()
		} else {
			r.enableRead()
		}
	case rcConsume:
		r.consume(rcSize(op.a))
	case rcBreak:
		r.breakWrites()
	case rcPeerWrite:
		if st.peerFIN || st.peerGone {
			return
		}
		n := min(rcSize(op.a), rcPeerBudget-st.peerSent)
		st.peer.SetWriteDeadline(time.Now().Add(rcWait))
		if _, err := st.peer.Write(testkit.UniqueAt(rcPeerID(st.k), st.peerSent, n)); err != nil {
			r.Fatalf("stream %d: peer Write(%d) = %v", st.k, n, err)
		}
		st.peerSent += n
	case rcPeerCloseWrite, rcPeerClose, rcPeerReset:
		r.peerEnd(byte(op.kind - rcPeerCloseWrite))
	case rcAwaitEnd:
		r.endStream(op.a)
	case rcNext:
		r.endStream(op.a)
		if len(r.streams) < rcMaxStreams {
			r.connect()
		}
	}
}

// write writes the next n bytes of stream 0 (within the budget).
func (r *rcRun) write(n int) {
	n = min(n, rcSockBudget-r.sent)
	err := r.s.Write(testkit.UniqueAt(0, r.sent, n))
	switch {
	case err == nil:
		r.sent += n
	case !r.st.peerGone:
		r.Errorf("stream %d: Write(%d) = %v though the peer neither closed nor reset", r.st.k, n, err)
	case !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE):
		r.Errorf("stream %d: Write(%d) = %v, want a reset or a broken pipe", r.st.k, n, err)
	}
}

// enableRead enables reading; a call that may come after an end the
// model has not seen yet (which disabled reading) leaves the model
// unsure of the bit, and one that the model knows to be redundant is
// not made.
func (r *rcRun) enableRead() {
	if r.readOn || r.st.readEnded {
		return
	}
	r.noteReadEnable()
	if err := r.s.Enable(actor.Read); err != nil {
		r.Errorf("Enable(Read) = %v", err)
	}
}

// noteReadEnable updates the model before reading is enabled: the first
// time in a stream that followed one whose end disabled reading, nothing
// may have been read yet.
func (r *rcRun) noteReadEnable() {
	st := r.st
	if st.peerFIN || st.peerGone {
		st.readRaced = true
	}
	if st.k > 0 && !st.readOnce && !r.streams[st.k-1].readRaced {
		r.turn()
		if n := r.s.InputLen(); n != 0 || r.delivered(st) != 0 {
			r.Errorf("stream %d: %d bytes read before reading was enabled on the new stream", st.k, n+r.delivered(st))
		}
	}
	r.readOn, st.readOnce = true, true
}

// enableWrite enables writing unless the model knows it is enabled. A
// failed write closes Failed before it disables writing: when Failed is
// still open after the Enable, a failure the model has not seen yet
// cannot have come before it.
func (r *rcRun) enableWrite() {
	if r.writeOn {
		return
	}
	if err := r.s.Enable(actor.Write); err != nil {
		r.Errorf("Enable(Write) = %v", err)
	}
	r.writeOn = true
	if !r.st.wFailed && testkit.Closed(r.st.failedC) {
		r.st.wRaced = true
	}
}

// callIn asks for In in the channel style; its first call in a stream
// enables reading, and after a stream whose In was closed it must be a
// new channel.
func (r *rcRun) callIn() {
	st := r.st
	if st.in != nil {
		if c := r.s.In(); c != st.in {
			r.Errorf("stream %d: In returned another channel on a second call", st.k)
		}
		return
	}
	if !r.readOn && !st.readEnded {
		r.noteReadEnable()
	} else if st.peerFIN || st.peerGone {
		st.readRaced = true // In's first call enables reading, maybe after an unseen end
	}
	st.in = r.s.In()
	r.readOn = !st.readEnded
	if st.k > 0 {
		if prev := r.streams[st.k-1]; prev.inClosed && st.in == prev.in {
			r.Errorf("stream %d: In returned the closed channel of the stream before", st.k)
		}
	}
}

// consume takes input by the program's style without waiting for any.
func (r *rcRun) consume(n int) {
	st := r.st
	switch r.prog.style {
	case rcPoll:
		p := make([]byte, n)
		k, err := r.s.TryRead(p)
		if err != nil {
			r.Errorf("TryRead() = %d, %v", k, err)
		}
		r.record(st, p[:k], "TryRead")
	case rcChannel:
		for ready := true; ready && st.in != nil && !st.inClosed; {
			select {
			case p, ok := <-st.in:
				r.takeIn(p, ok)
			default:
				ready = false
			}
		}
	case rcCallback:
		r.turn()
	}
}

// takeIn takes what In gave: a chunk, or its closing, which comes only
// after the end of the read side, reported before (the event callback
// runs on the actor as the end is emitted), and every byte before it.
func (r *rcRun) takeIn(p []byte, ok bool) {
	st := r.st
	if ok {
		r.record(st, p, "In")
		return
	}
	st.inClosed = true
	r.pollEvents()
	if got := r.delivered(st); !st.readEnded || st.endEOF && got != st.peerSent {
		r.Errorf("stream %d: In closed with the read side ended %v (EOF %v) after %d bytes of the peer's %d, Err() = %v",
			st.k, st.readEnded, st.endEOF, got, st.peerSent, r.s.Err())
	}
}

// drainPoll takes all the input with TryRead (poll style).
func (r *rcRun) drainPoll() {
	for range 1000 {
		p := make([]byte, 4096)
		k, err := r.s.TryRead(p)
		if err != nil {
			r.Errorf("TryRead() = %d, %v", k, err)
		}
		r.record(r.st, p[:k], "TryRead")
		if k == 0 {
			return
		}
	}
	r.Fatalf("TryRead still had input after 1000 calls")
}

// breakWrites, once the peer closed or reset, enables writing and writes
// until the output fails, which it must before long, and waits for the
// Writing|Error event.
func (r *rcRun) breakWrites() {
	st := r.st
	if !st.peerGone || st.wFailed {
		return
	}
	r.enableWrite()
	deadline := time.Now().Add(rcWait)
	for i := 0; !testkit.Closed(st.failedC); i++ {
		if i == rcBreakWrites || time.Now().After(deadline) || r.sent+16 > rcSockBudget {
			r.Fatalf("stream %d: no write failed after the peer closed or reset (%d writes)", st.k, i)
		}
		r.write(16)
		r.turn() // so that the writes do not outrun the actor
	}
	r.awaitEvent(func() bool { return st.wFailed }, "the Writing|Error event after Failed was closed")
}

// peerEnd ends the peer's side: 0 half-closes, 1 closes, 2 resets.
func (r *rcRun) peerEnd(how byte) {
	st := r.st
	if st.peerGone || how == 0 && st.peerFIN {
		return
	}
	switch how {
	case 0:
		if err := st.peer.CloseWrite(); err != nil {
			r.Fatalf("stream %d: peer CloseWrite() = %v", st.k, err)
		}
		st.peerFIN = true
		return
	case 2:
		st.peer.SetLinger(0)
	}
	st.peer.Close()
	st.peerGone = true
	if how == 1 {
		st.peerFIN = true
	}
}

// awaitEvent handles events until done reports true, within rcWait,
// taking In's chunks meanwhile in the channel style.
func (r *rcRun) awaitEvent(done func() bool, what string) {
	timer := time.NewTimer(rcWait)
	defer timer.Stop()
	for !done() {
		var in <-chan []byte
		if r.st.in != nil && !r.st.inClosed {
			in = r.st.in
		}
		select {
		case ev := <-r.evs:
			r.handle(ev)
		case p, ok := <-in:
			r.takeIn(p, ok)
		case <-r.readable:
			r.drainPoll()
		case <-timer.C:
			r.Fatalf("stream %d: no %s within %v", r.st.k, what, rcWait)
		}
	}
}

// pollEvents handles the events already seen.
func (r *rcRun) pollEvents() {
	for _, ev := range testkit.Pending(r.evs) {
		r.handle(ev)
	}
}

// handle checks one event of the current stream against the model.
func (r *rcRun) handle(e actor.EventInfo) {
	st := r.st
	ev, err := e.Event, e.Err
	switch {
	case ev == actor.Reading|actor.EOF:
		if st.readEnded || !st.peerFIN {
			r.Errorf("stream %d: EOF (ended before: %v, peer sent FIN: %v)", st.k, st.readEnded, st.peerFIN)
		}
		if got := r.delivered(st); r.prog.style == rcCallback && got != st.peerSent {
			r.Errorf("stream %d: EOF after %d bytes of the peer's %d", st.k, got, st.peerSent)
		}
		st.readEnded, st.endEOF = true, true
	case ev == actor.Reading|actor.Error:
		if st.readEnded || !st.peerGone || !errors.Is(err, syscall.ECONNRESET) {
			r.Errorf("stream %d: read error %v (ended before: %v, peer closed or reset: %v), want ECONNRESET", st.k, err, st.readEnded, st.peerGone)
		}
		st.readEnded = true
	case ev == actor.Writing|actor.Error:
		if st.wFailed || !st.peerGone || !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			r.Errorf("stream %d: write error %v (failed before: %v, peer closed or reset: %v), want ECONNRESET or EPIPE", st.k, err, st.wFailed, st.peerGone)
		}
		if !testkit.Closed(st.failedC) {
			r.Errorf("stream %d: Failed not closed at the Writing|Error event", st.k)
		}
		st.wFailed, r.writeOn = true, false
	case ev == actor.Connected && r.connecting:
		r.connecting = false
		return
	default:
		r.Errorf("stream %d: unexpected event %v %v", st.k, ev, err)
		return
	}
	if ev&actor.Reading != 0 {
		r.readOn = false
	}
	if st.first == nil {
		st.first = err
	}
}

// endStream ends the current stream's read side: an open peer ends its
// side as how says, reading is enabled, and the input is consumed to its
// end; then Err must say how the stream first ended.
func (r *rcRun) endStream(how byte) {
	st := r.st
	r.SetDoing("ending stream %d", st.k)
	if !st.peerFIN && !st.peerGone {
		r.peerEnd(how % 3)
	}
	if r.prog.style == rcChannel && st.in == nil {
		r.callIn()
	} else {
		r.enableRead()
	}
	r.awaitEvent(func() bool {
		return st.readEnded && (r.prog.style != rcChannel || st.inClosed)
	}, "end of the read side")
	if r.prog.style == rcPoll {
		r.drainPoll()
	}
	if got := r.delivered(st); st.endEOF && got != st.peerSent {
		r.Errorf("stream %d: the read side ended with EOF after %d bytes of the peer's %d", st.k, got, st.peerSent)
	}
	if got, want := rcClass(r.s.Err()), rcClass(st.first); got != want {
		r.Errorf("stream %d: Err() = %v (%s), want the stream's first end %v (%s)", st.k, r.s.Err(), got, st.first, want)
	}
	if !st.readRaced && r.s.Enabled()&actor.Read != 0 {
		r.Errorf("stream %d: reading still enabled after the end of the read side", st.k)
	}
}

// connect connects the socket to a new listener, waits for Connected
// (handling the events of the stream before), checks the new stream's
// start and starts its peer's reader.
func (r *rcRun) connect() {
	prev := r.st
	k := len(r.streams)
	r.SetDoing("connecting stream %d", k)
	wBefore := r.s.Written()
	ln := testconn.Listen(r.T)
	st := &rcStream{k: k, rdDone: make(chan struct{})}
	r.cur.Store(st)
	if err := r.s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
		r.Fatalf("stream %d: ConnectAddr() = %v", k, err)
	}
	ln.SetDeadline(time.Now().Add(rcWait))
	c, err := ln.AcceptTCP()
	if err != nil {
		r.Fatalf("stream %d: Accept() = %v", k, err)
	}
	ln.Close()
	st.peer = c
	r.streams = append(r.streams, st)
	if prev == nil {
		r.st = st
	}
	r.connecting = true // the events before Connected are the stream before's
	r.awaitEvent(func() bool { return !r.connecting }, "Connected")
	wAfter := r.s.Written()
	if err := r.s.Err(); err != nil {
		r.Errorf("stream %d: Err() = %v right after Connected, want nil", k, err)
	}
	st.failedC = r.s.Failed()
	if testkit.Closed(st.failedC) {
		r.Errorf("stream %d: Failed is closed right after Connected", k)
	}
	r.st = st
	r.readers.Go(func() { r.peerReader(st) })
	if prev == nil {
		st.winLo, st.winHi = 0, 0
		return
	}
	if testkit.Closed(prev.failedC) && st.failedC == prev.failedC {
		r.Errorf("stream %d: Failed returned the closed channel of the stream before", k)
	}
	if !prev.readRaced && r.s.Enabled()&actor.Read != 0 {
		r.Errorf("stream %d: reading enabled after a reconnect though the end before disabled it", k)
	}
	if prev.wFailed && !prev.wRaced && !r.writeOn {
		if r.s.Enabled()&actor.Write != 0 {
			r.Errorf("stream %d: writing enabled after a reconnect though the failure before disabled it", k)
		}
		r.turn()
		if w := r.s.Written(); w != wAfter {
			r.Errorf("stream %d: %d bytes written before Enable(Write) after the failure before", k, w-wAfter)
		}
	}
	r.checkPeer(prev)
	st.winLo, st.winHi = max(r.nextLo, wBefore), min(r.nextHi, wAfter)
	if st.winLo > st.winHi {
		r.Errorf("stream %d: the peer before read up to [%d, %d] of the socket's stream, but Written was %d to %d at the reconnect",
			k, r.nextLo, r.nextHi, wBefore, wAfter)
		st.winLo, st.winHi = wBefore, wAfter
	}
}

// peerReader is stream st's peer reading everything until its end.
func (r *rcRun) peerReader(st *rcStream) {
	defer close(st.rdDone)
	st.peer.SetReadDeadline(time.Now().Add(rcWatchdog))
	b := make([]byte, 32<<10)
	for {
		n, err := st.peer.Read(b)
		st.rdData = append(st.rdData, b[:n]...)
		if err != nil {
			st.rdErr = err
			return
		}
	}
}

// checkPeer waits for stream st's peer reader to return and checks what
// it read: a run of the socket's stream starting where the transport
// before stopped taking bytes (somewhere in st's window), all the socket's
// transport took if it read a clean end of stream. It sets nextLo and
// nextHi for the next stream.
func (r *rcRun) checkPeer(st *rcStream) {
	r.SetDoing("awaiting the peer reader of stream %d", st.k)
	select {
	case <-st.rdDone:
	case <-time.After(rcWait):
		r.Fatalf("stream %d: the peer's reader did not return within %v of the reconnect", st.k, rcWait)
	}
	d := st.rdData
	lo, hi := int64(-1), int64(-1)
	for c := st.winLo; c <= st.winHi; c++ {
		if testkit.UniqueMismatch(0, int(c), d) < 0 {
			if lo < 0 {
				lo = c
			}
			hi = c
		}
	}
	if lo < 0 {
		r.Errorf("stream %d: the peer read %d bytes (%x…) that are no run of the socket's stream starting in [%d, %d] (there: %x…)",
			st.k, len(d), d[:min(len(d), 16)], st.winLo, st.winHi, testkit.UniqueAt(0, int(st.winLo), min(len(d), 16)))
		lo, hi = st.winLo, st.winHi
	}
	r.nextLo, r.nextHi = lo+int64(len(d)), int64(math.MaxInt64)
	if errors.Is(st.rdErr, io.EOF) && !st.peerGone {
		r.nextHi = hi + int64(len(d))
	}
}

// checkLive checks the getters between operations: Written never
// decreases, and Failed is open while the peer has neither closed nor
// reset.
func (r *rcRun) checkLive() {
	if w := r.s.Written(); w < r.written {
		r.Errorf("Written() went from %d down to %d", r.written, w)
	} else {
		r.written = w
	}
	if !r.st.peerGone && testkit.Closed(r.st.failedC) {
		r.Errorf("stream %d: Failed closed though the peer neither closed nor reset", r.st.k)
	}
}

// finish ends the program's last stream, connects one more whose peer
// must read everything the output still held and is half-closed by
// Flush(Write, Finished), ends it cleanly, and closes the socket and
// the Base.
func (r *rcRun) finish() {
	r.endStream(0)
	r.connect()
	st := r.st
	r.SetDoing("final stream %d", st.k)
	r.enableWrite()
	if err := r.s.Flush(actor.Write, actor.Finished); err != nil {
		r.Errorf("Flush(Write, Finished) = %v", err)
	}
	r.endStream(0) // the peer half-closes: a clean EOF
	r.SetDoing("final stream %d: awaiting the peer's end of stream", st.k)
	select {
	case <-st.rdDone:
	case <-time.After(rcWait):
		r.Fatalf("final stream %d: the peer read no end of stream within %v (Written %d of %d)", st.k, rcWait, r.s.Written(), r.sent)
	}
	if !errors.Is(st.rdErr, io.EOF) {
		r.Errorf("final stream %d: the peer's read ended with %v, want EOF", st.k, st.rdErr)
	}
	r.checkPeer(st)
	// A clean end of stream: the last peer's run ends where the socket's
	// stream does (nextLo and nextHi bound its end).
	if n := int64(r.sent); n < r.nextLo || n > r.nextHi {
		r.Errorf("final stream %d: the last peer's run of the socket's stream ends in [%d, %d], want at all %d bytes written (Written %d)",
			st.k, r.nextLo, r.nextHi, r.sent, r.s.Written())
	}
	if w := r.s.Written(); w != int64(r.sent) {
		r.Errorf("final stream %d: Written() = %d after the peer read everything, want %d", st.k, w, r.sent)
	}
	r.pollEvents()
	r.SetDoing("closing")
	if r.prog.free {
		r.s.Free() // the Base's Close joins it
	} else if err := r.s.Close(); err != nil {
		r.Errorf("Close() = %v, want nil", err)
	}
	if err := r.base.Close(); err != nil {
		r.Errorf("Base.Close() = %v, want nil", err)
	}
	if !testkit.Closed(r.s.Done()) {
		r.Errorf("Done() open after the Base's Close returned")
	}
	r.cleanup() // the peers and their readers
	r.SetDoing("goroutines")
	if err := goleak.Find(r.ignore); err != nil {
		r.Errorf("goroutines left after the Base was closed: %v", err)
	}
}
