package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/bevgo/bev/limiter"
)

// actorState is everything the actor goroutine owns. No other goroutine
// touches it, so nothing here is locked. Its small fields are grouped so
// that the Bufferevent holding it stays within a 1 KiB allocation
// (TestBuffereventSize): every idle connection pays for it.
type actorState struct {
	b    *Bufferevent
	sess Session

	input, output Buffer
	rawIn, rawOut Buffer // what the transport gave / will get, with stages
	inStage       Stage
	outStage      Stage

	t       Transport
	l       *loops
	batch   [][]byte
	wbufs   net.Buffers
	handed  Buffer       // chunks handed to a BufferWriter, the writer loop's until it reports
	bw      BufferWriter // the transport as a BufferWriter, or nil
	flight  int          // bytes handed over as chunks, not yet written
	head    [][]byte
	spare   []message
	writing bool
	ownsT   bool // the transport is ours (a pair's pipe): always close it
	// writeReset: a write failed because the peer reset the connection
	// (ECONNRESET, the output's failure cause). The kernel reports a
	// reset once, to the first call that looks: when that was a write, a
	// read after it returns 0 as if the peer had ended its stream, so
	// endRead reports the reset instead of an EOF that would hide the
	// truncation.
	writeReset bool
	// eofHeld: a read returned 0 from a TCP socket the kernel has closed
	// while a write was with the writer loop. That write may be the one
	// that took the reset: the EOF waits for its result (onWrote), which
	// comes at once on a closed socket, to be reported as what it was.
	eofHeld bool

	// counted is the part of b.outLen on the actor's account: the
	// pending output it last published plus the bytes it has taken since
	// from senders, who had counted them (see publishOut).
	counted int

	connecting bool
	// handshake: the transport is a Handshaker whose handshake has not
	// run; its loops start once it has (see startHandshake).
	handshake  bool
	connCancel context.CancelFunc
	connWG     sync.WaitGroup

	eof, readErr, writeErr bool
	lingering              bool // Drain half-closed and now reads to the peer's EOF
	lingerDone             bool // the peer's EOF came, or lingering gave up
	wantCloseWrite         bool
	closeWriteSent         bool
	closeWriteDone         bool

	// heldEnd is an EOF or read error that came while reading was
	// disabled (a read already under way when Disable came): it is
	// reported when reading is enabled again, as libevent, which does not
	// read while reading is disabled, would only then notice it.
	heldEnd error
	// heldEv and heldErr are events that came before any callbacks were
	// set, with no Events channel to take them: delivered when the first
	// SetCallbacks arrives (see emit).
	heldEv       Event
	heldErr      error
	drainWaiters []chan struct{}

	tm             *timers // made when a timeout is first armed
	rArmed, wArmed bool
	wHeld          int // transportBuffered when the write timer was armed

	unnotified bool // input arrived that no read callback has seen
	defRead    bool
	defWrite   bool
	scheduled  bool
	defEvents  Event
	defErr     error

	inC   chan []byte // nil once closed
	evC   chan EventInfo
	evq   []EventInfo
	gotIn bool // In was called: input goes to the channel
	gotEv bool

	stopping bool
	failing  bool

	// inPending is a Flush or Finished of the input stage not yet done:
	// the stage is called in that mode, within the read high watermark,
	// until it has emitted all it holds (runInput). eofPending is the EOF
	// that started a Finished, reported when it is done. inStarved says
	// the stage's last call with room did nothing with what waits in
	// rawIn: it needs more raw bytes (rawHeld).
	inPending  FlushMode
	eofPending bool
	inStarved  bool
}

func (a *actorState) init(b *Bufferevent, in, out Stage) {
	a.b = b
	a.sess.a = a
	a.inStage, a.outStage = in, out
	// As libevent's socket and pair bufferevents: users may not append to
	// the input, nor take from the front of the output while the writer
	// loop may hold views of it.
	a.input.setFrozen(false, true)
	a.output.setFrozen(out == nil, false)
}

func (a *actorState) enabled(d Dir) bool { return Dir(a.b.enabled.Load())&d != 0 }

// attach makes t the transport. A Handshaker not ready yet (given by New
// or SetTransport, not made by a connect's dial, which runs any handshake
// itself) gets no loops until its handshake has run: see startHandshake.
func (a *actorState) attach(t Transport, ready bool) {
	a.t = t
	a.b.tbox.Store(&transportBox{t})
	a.stopTimer(timerLinger) // a linger of the transport before
	a.lingering, a.lingerDone = false, false
	a.eof, a.readErr, a.writeErr = false, false, false
	a.heldEnd = nil
	a.eofPending, a.inStarved, a.inPending = false, false, Normal
	a.wantCloseWrite, a.closeWriteSent, a.closeWriteDone = false, false, false
	if _, ok := t.(Handshaker); ok && !ready {
		a.handshake = true
		return
	}
	a.startIO()
}

// startIO starts the loops of the transport, which is ready for I/O.
func (a *actorState) startIO() {
	t := a.t
	a.l = startLoops(t, &a.b.maxRead, &a.b.rwm, &a.b.rate, a.b.mail.notify)
	if a.l.sys != nil {
		a.b.mail.parker.Store(&a.l.park)
	}
	a.bw, _ = t.(BufferWriter)
	if a.l.pull != nil {
		a.l.pull.NotifyReadable(a.b.mail.notify)
	}
	if p, ok := t.(progressNotifier); ok {
		mail := &a.b.mail
		p.NotifyProgress(func() { mail.post(message{kind: msgProgress}) })
	}
}

// wantsIO reports whether the bufferevent would read or write now if its
// transport were ready: reading is enabled, output waits with writing
// enabled, or a half-close or drain waits.
func (a *actorState) wantsIO() bool {
	return a.enabled(Read) || a.enabled(Write) && a.pendingOut() > 0 ||
		a.wantCloseWrite || len(a.drainWaiters) > 0
}

// startHandshake runs the handshake of the transport, a Handshaker, on a
// goroutine the bufferevent owns, as a connect's dial runs: Close cancels
// it, and connects and transport changes are refused (ErrBusy) meanwhile.
// It is started when the bufferevent first wants I/O, so that any method
// that does (Enable, Write, In, Flush with Finished, Drain) starts it,
// and a socket nobody uses yet does not answer its peer. onHandshake
// takes the result.
func (a *actorState) startHandshake() {
	h := a.t.(Handshaker)
	a.handshake = false
	ctx, cancel := context.WithCancel(context.Background())
	a.connCancel = cancel
	a.connecting = true
	a.b.connState.Store(connBusy)
	a.connWG.Go(func() {
		err := h.Handshake(ctx)
		a.b.mail.post(message{kind: msgConnected, tr: &transportMsg{err: err, handshake: true}})
	})
}

// onHandshake takes the result of the transport's handshake: Connected
// and the loops started, or Error with its cause and the transport
// closed (and dropped), as a failed connect.
func (a *actorState) onHandshake(err error) {
	a.connCancel()
	a.connCancel = nil
	a.connecting = false
	a.connWG.Wait()
	a.b.connState.Store(connIdle)
	if a.t == nil {
		return
	}
	if err != nil {
		a.detach(true)
		a.emit(Error, err)
		return
	}
	a.startIO()
	a.emit(Connected, nil)
}

// detach stops the loops of the current transport and forgets it.
func (a *actorState) detach(closeT bool) error {
	var err error
	if a.l != nil {
		a.b.mail.parker.Store(nil)
		if a.l.pull != nil {
			a.l.pull.NotifyReadable(nil)
		}
		err = a.l.stop(closeT || a.ownsT)
		a.l = nil
		a.handed.dropAll() // a hand-over the writer never took
	} else if a.t != nil && (closeT || a.ownsT) {
		err = a.t.Close()
	}
	if p, ok := a.t.(progressNotifier); ok {
		p.NotifyProgress(nil)
	}
	a.t, a.bw = nil, nil
	a.handshake = false
	a.writing = false
	a.flight = 0
	a.b.tbox.Store(nil)
	return err
}

func (a *actorState) run() {
	defer a.exit()
	for {
		a.step()
		if a.stopping {
			return
		}
		if !a.waitInSocket() {
			a.wait()
		}
		if isClosedChan(a.b.closing) {
			a.stopping = true
		}
	}
}

// What the actor waits for besides its mailbox and its loops: each is
// asked by wait, which selects on it, and by waitInSocket, which may not
// wait in the socket while any of them could wake it.
func (a *actorState) sendsInput() bool  { return a.inC != nil && a.input.Len() > 0 }
func (a *actorState) sendsEvents() bool { return a.evC != nil && len(a.evq) > 0 }
func (a *actorState) takesOutput() bool {
	return a.b.outUsed.Load() && a.outRoom() && !a.writeErr
}

// lingerArmed reports whether a drain is reading to the peer's EOF, its
// linger timer running.
func (a *actorState) lingerArmed() bool { return a.lingering && !a.lingerDone }

// waitInSocket is the wait of a socket's actor that reads its socket
// itself (see parker), and reports whether it waited. It cannot wait in
// the socket while it has something other than a read, a post or a
// finished write to wait for (a channel to serve, a rate limit; timers
// and the Base's turns post); if it then wants to read, it starts the
// reader loop, which reads from then on as for any other transport, and
// wait waits. It is not inlined, so that the frames of the select in wait are not on
// the stack while an idle connection waits here: it then fits the
// runtime's smallest stack.
//
//go:noinline
func (a *actorState) waitInSocket() bool {
	l := a.l
	if l == nil || l.sys == nil || l.readerUp || l.allowed() <= 0 {
		return false
	}
	if a.sendsInput() || a.sendsEvents() || a.takesOutput() || a.b.rate.Load().limited() {
		l.startReader()
		return false
	}
	l.park.wait()
	if a.takePosted() {
		return true
	}
	n, err := l.readNow()
	a.ownRead(n, err, l.park.done())
	return true
}

// takePosted handles what was posted, or written, before the actor began
// waiting in its socket, since that did not kick it; it reports whether
// there was any, the actor then being done waiting.
//
//go:noinline
func (a *actorState) takePosted() bool {
	// Two one-case selects, not one of two cases: a one-case select
	// without waiting looks at an empty channel without locking it, and
	// this runs before every wait of a busy connection.
	select {
	case <-a.b.mail.signal:
		a.l.park.done()
		a.handleMail()
		return true
	default:
	}
	select {
	case ev := <-a.l.events: // only the writer loop sends here: the reader does not run
		a.l.park.done()
		a.onWrote(ev)
		return true
	default:
		return false
	}
}

// ownRead hands the actor's own read of its socket (readNow: n bytes,
// err) over as the reader loop's would be. A deadline error after a kick
// is the kick's, not the stream's; a read that a kick ended with nothing
// is no read at all.
//
//go:noinline
func (a *actorState) ownRead(n int, err error, kicked bool) {
	if kicked && errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil
	}
	ev := a.l.rev
	a.l.rev = loopEvent{}
	ev.err = err
	if n == 0 && err == nil {
		ev.done()
		return // kicked: run's next round sees why
	}
	a.onRead(ev)
}

// wait waits for whatever comes first of: a post (timers and the Base's
// turns post too), a loop's result, a channel peer.
func (a *actorState) wait() {
	b := a.b
	var (
		loopC <-chan loopEvent
		inC   chan<- []byte
		head  []byte
		evC   chan<- EventInfo
		ev    EventInfo
		outC  <-chan []byte
		sendC <-chan []byte
	)
	if a.l != nil {
		loopC = a.l.events
	}
	if a.sendsInput() {
		a.head = a.input.slices(a.head[:0], a.input.Len())
		inC, head = a.inC, a.head[0]
	}
	if a.sendsEvents() {
		evC, ev = a.evC, a.evq[0]
	}
	if a.takesOutput() {
		outC, sendC = b.out, b.send
	}
	select {
	case <-b.mail.signal:
		a.handleMail()
	case ev := <-loopC:
		if ev.wrote {
			a.onWrote(ev)
		} else {
			a.onRead(ev)
		}
	case inC <- head:
		a.input.popChunk()
	case p := <-outC:
		a.output.AppendOwned(p)
	case p := <-sendC:
		a.counted += len(p) // Send counted it in outLen (see publishOut)
		a.output.AppendOwned(p)
	case evC <- ev:
		a.evq[0] = EventInfo{}
		a.evq = a.evq[1:]
	}
}

// step brings everything in line with the state after a message: runs the
// stages, starts writes, runs deferred callbacks when there is no Base,
// and re-arms the reader and the timers.
func (a *actorState) step() {
	a.syncChannels()
	if a.handshake && !a.stopping && a.wantsIO() {
		a.startHandshake()
	}
	more := false
	for range 16 {
		if a.stopping {
			return
		}
		more = a.pullRead()
		a.runInput(Normal)
		a.runOutput(Normal)
		a.pumpWrite()
		a.checkDrain()
		a.closeInIfDone()
		if a.b.base == nil && a.hasDeferred() {
			a.runDeferred()
			continue
		}
		if more {
			continue // the callbacks may have made room for it
		}
		break
	}
	if a.stopping {
		return
	}
	if more {
		a.b.mail.notify() // look again next turn
	}
	if a.b.base != nil && a.hasDeferred() && !a.scheduled {
		a.scheduled = true
		a.b.base.schedule(a.b, int(a.b.pri.Load()))
	}
	a.updateReadLimit()
	a.reconcileTimers()
	a.b.inLen.Store(int64(a.input.Len()))
	a.publishOut()
}

// publishOut brings b.outLen in line with the pending output. Senders on
// other goroutines add what they post to b.outLen before their call
// returns (Write, WriteBuffer, Send), so b.outLen is the actor's account
// (counted) plus what senders posted and the actor has not taken yet;
// once it takes those bytes they move to its account. Storing pendingOut
// instead would lose a sender's add made between the computation and the
// store; adding the difference from the account counts each byte once,
// whether it waits in the mailbox or in the output.
func (a *actorState) publishOut() {
	p := a.pendingOut()
	if d := p - a.counted; d != 0 {
		a.b.outLen.Add(int64(d))
	}
	a.counted = p
}

func (a *actorState) handleMail() {
	// Posts that came since the select woke have set the signal again,
	// but take below gets their messages now: clear it first, or the next
	// select wakes to an empty queue. (Clearing after take could eat the
	// signal of a message take missed.)
	select {
	case <-a.b.mail.signal:
	default:
	}
	msgs := a.b.mail.take(a.spare)
	for i := range msgs {
		a.handle(&msgs[i])
		msgs[i] = message{}
	}
	a.spare = msgs[:0]
}

func (a *actorState) handle(m *message) {
	switch m.kind {
	case msgWake:
	case msgWrite:
		a.counted += m.c.len()
		a.output.pushChunk(m.c)
	case msgWriteOwned:
		a.counted += len(m.p)
		a.output.AppendOwned(m.p)
	case msgWriteBuffer:
		a.counted += m.buf.Len()
		a.output.MoveFrom(m.buf)
	case msgFunc:
		a.callFunc(m.fn, m.done)
	case msgEnable:
		a.onEnable(m.dir)
	case msgTimeouts:
		a.resetTimer(Read | Write)
	case msgFlush:
		a.flush(m.dir, m.mode)
	case msgTrigger:
		a.trigger(m.dir, m.topt)
	case msgTriggerEvent:
		a.triggerEvent(m.ev, m.topt)
	case msgConnect:
		a.startConnect(m.tr.ctx, m.tr.dial)
	case msgSetTransport:
		a.detach(m.tr.replace)
		if m.tr.t != nil {
			a.attach(m.tr.t, false)
		}
	case msgConnected:
		if m.tr.handshake {
			a.onHandshake(m.tr.err)
		} else {
			a.onConnect(m.tr.t, m.tr.err)
		}
	case msgDrain:
		a.flush(Write, Finished)
		a.drainWaiters = append(a.drainWaiters, m.done)
	case msgCallbacks:
		a.releaseHeld()
	case msgProgress:
		// Bytes a buffered transport held downstream moved on: that is
		// write progress, and the transport may take more now.
		a.resetTimer(Write)
	case msgTimer:
		a.onTimer(int(m.timer))
	case msgTurn:
		a.runDeferred()
		a.b.turn <- struct{}{} // the turn is over (see Base.dispatch)
	}
}

// onTimer handles a firing of timer i, unless the timer has been stopped
// or re-armed for later since (a late firing; see Clock): a read or
// write timeout, or the end of a drain's linger.
func (a *actorState) onTimer(i int) {
	armed := [numTimers]bool{a.rArmed, a.wArmed, a.lingerArmed()}
	if !armed[i] || !a.timerDue(i) {
		return
	}
	switch i {
	case timerRead:
		a.rArmed = false
		a.onTimeout(Read)
	case timerWrite:
		a.wArmed = false
		if !a.quietWriteProgress() {
			a.onTimeout(Write)
		}
	case timerLinger:
		a.lingerDone = true // the peer kept sending: give up waiting
	}
}

func (a *actorState) startConnect(ctx context.Context, dial DialFunc) {
	ctx, cancel := context.WithCancel(ctx)
	a.connCancel = cancel
	a.connecting = true
	a.connWG.Go(func() {
		t, err := dial(ctx)
		if err == nil && t == nil {
			err = fmt.Errorf("connect: dial returned no transport: %w", ErrNoTransport)
		}
		if !a.b.mail.post(message{kind: msgConnected, tr: &transportMsg{t: t, err: err}}) && t != nil {
			t.Close()
		}
	})
}

func (a *actorState) onConnect(t Transport, err error) {
	a.connCancel()
	a.connCancel = nil
	a.connecting = false
	a.connWG.Wait()
	if err != nil {
		a.b.connState.Store(connIdle)
		a.emit(Error, err)
		return
	}
	// A Flush(Write, Finished) or Drain made while connecting was meant
	// for the connection being made: keep it across attach, which starts
	// the new transport with a clean half-close state.
	finish := a.wantCloseWrite && !a.closeWriteSent
	a.detach(true)
	a.attach(t, true)
	a.wantCloseWrite = finish
	a.b.connState.Store(connIdle)
	a.emit(Connected, nil)
}

func (a *actorState) onRead(r loopEvent) {
	if a.lingering {
		a.discard(r)
		return
	}
	dst := a.readDst()
	n := 0
	for _, c := range r.chunks() {
		n += c.len()
		dst.pushChunk(c)
	}
	r.done()
	a.gotRead(n, r.err)
}

// readDst is where reads land: rawIn with an input stage, else the input.
func (a *actorState) readDst() *Buffer {
	if a.inStage != nil {
		return &a.rawIn
	}
	return &a.input
}

// gotRead takes in a read of n bytes, already appended to readDst, that
// ended with err (nil, EOF or a read error), as onRead does for the
// loops' reads.
func (a *actorState) gotRead(n int, err error) {
	if n > 0 {
		a.updateReadLimit()
		a.l.delivered(n)
		a.resetTimer(Read)
		a.unnotified = true
		if a.inStage == nil {
			a.readProgress()
		}
	}
	if err == nil {
		return
	}
	if !a.enabled(Read) {
		a.heldEnd = err
		return
	}
	a.endRead(err)
}

// endRead reports the end of the read side: EOF or a read error.
func (a *actorState) endRead(err error) {
	if errors.Is(err, io.EOF) && !a.writeReset && a.writing && tcpClosed(a.t) {
		a.eofHeld = true
		return
	}
	if errors.Is(err, io.EOF) && a.writeReset {
		a.b.errMu.Lock()
		if a.b.wErr != nil {
			err = a.b.wErr // not an end of stream: the peer reset it
		}
		a.b.errMu.Unlock()
	}
	if errors.Is(err, io.EOF) {
		a.eof = true
		if a.inStage != nil {
			// Flush the input stage while reading is still enabled, so
			// that what it produces reaches the read callback before the
			// EOF event. The stage stays within the read high watermark,
			// so the EOF waits until the user has taken what it decodes
			// (runInput reports it then); a stage that fails at end of
			// stream reports its Error instead.
			a.eofPending = true
			a.runInput(Finished)
			return
		}
		a.b.enabled.And(^uint32(Read))
		a.emit(Reading|EOF, io.EOF)
		return
	}
	a.b.enabled.And(^uint32(Read))
	a.readErr = true
	a.emit(Reading|Error, err)
}

// onWrote takes in a write's result, then reports an EOF held for it (see
// eofHeld), as an error if the write met the reset.
func (a *actorState) onWrote(w loopEvent) {
	a.wrote(w)
	if a.eofHeld && !a.writing {
		a.eofHeld = false
		a.endRead(io.EOF)
	}
}

func (a *actorState) wrote(w loopEvent) {
	a.writing = false
	if w.closeWrite {
		a.closeWriteDone = true
		if w.err != nil && !errors.Is(w.err, net.ErrClosed) {
			a.writeErr = true
			a.emit(Writing|Error, w.err)
		}
		return
	}
	src := &a.output
	if a.outStage != nil {
		src = &a.rawOut
	}
	if a.flight > 0 {
		a.flight = 0 // handed over as chunks: nothing left to drain
		if a.handed.n > 0 && w.err == nil {
			// A partialWriter took part: the rest is output again,
			// where the write low watermark and the user see it.
			src.prependAll(&a.handed)
		}
	} else {
		src.drain(int(w.n))
	}
	if w.n > 0 {
		a.resetTimer(Write)
	}
	if w.err != nil {
		a.writeErr = true
		a.writeReset = errors.Is(w.err, syscall.ECONNRESET)
		// Publish what is left before Send and Write can see the failure:
		// a caller must not read an OutputLen from before it.
		a.publishOut()
		a.b.failOutput(w.err)
		a.b.enabled.And(^uint32(Write))
		a.emit(Writing|Error, w.err)
		return
	}
	// With an output stage the write callback comes from runOutput, when
	// the stage drains the output.
	if w.n > 0 && a.enabled(Write) && a.outStage == nil {
		if _, low := a.writeMarks(); a.output.Len() <= low {
			a.notify(Write)
		}
	}
}

func (a *actorState) onTimeout(d Dir) {
	a.b.enabled.And(^uint32(d))
	ev := Timeout | Reading
	if d == Write {
		ev = Timeout | Writing
	}
	a.emit(ev, ErrTimeout)
}

func (a *actorState) onEnable(d Dir) {
	a.resetTimer(d)
	if d&Read != 0 && a.unnotified {
		a.readProgress()
	}
	if err := a.heldEnd; d&Read != 0 && err != nil && a.enabled(Read) && !a.stopping {
		a.heldEnd = nil
		a.endRead(err)
	}
}

// readProgress runs the read callback if the input passed the low
// watermark while reading is enabled.
func (a *actorState) readProgress() {
	if !a.enabled(Read) || a.input.Len() == 0 {
		return
	}
	if low := a.b.rwm.Load().low; a.input.Len() >= low {
		a.unnotified = false
		a.notify(Read)
	}
}

func (a *actorState) writeMarks() (high, low int) {
	wm := a.b.wwm.Load()
	return wm.high, wm.low
}

// outRoom reports whether the Out channel may hand over more output:
// whether the output, with what was handed to the transport as chunks and
// not yet taken (as a socket's output still holds what is being written),
// is below the write high watermark.
func (a *actorState) outRoom() bool {
	high, _ := a.writeMarks()
	if high == 0 {
		high = DefaultChannelHighWatermark
	}
	return a.output.Len()+a.flight < high && !a.stopping
}

func (a *actorState) pendingOut() int { return a.output.Len() + a.rawOut.Len() + a.flight }

// quietWriteProgress reports, when the write timeout expires, whether a
// buffered transport shows that it should not: it holds less than when
// the timer was armed (progress it did not signal), or it holds nothing
// while nothing else is pending. The timer is then re-armed as needed by
// reconcileTimers instead of reporting Timeout.
func (a *actorState) quietWriteProgress() bool {
	bt, ok := a.t.(bufferedTransport)
	if !ok {
		return false
	}
	held := bt.Buffered()
	if held == 0 {
		return a.pendingOut() == 0 && !a.connecting
	}
	return held < a.wHeld
}

// transportBuffered is what the transport still holds of what it was
// given, when it says (a filter's view of its underlying bufferevent).
func (a *actorState) transportBuffered() int {
	if bt, ok := a.t.(bufferedTransport); ok {
		return bt.Buffered()
	}
	return 0
}

// maxDirectWrites bounds the direct writes of one pumpWrite, so that a
// write callback that refills the output each time it drains cannot keep
// the actor from its mailbox: after that many, the rest goes to the writer
// loop, whose result comes back through the actor's select.
const maxDirectWrites = 16

// pumpWrite starts writing the output when nothing is in flight. On a
// socket with a side door (sysConn) it first writes directly what the
// kernel takes at once, and hands only the rest to the writer loop; the
// result of a direct write goes through onWrote exactly as the writer
// loop's would.
func (a *actorState) pumpWrite() {
	direct := 0 // direct writes made; the side door is closed at maxDirectWrites
	if a.l == nil || (a.l.sys == nil && a.bw == nil) {
		direct = maxDirectWrites
	}
	for {
		if a.writing || a.l == nil || a.writeErr || a.stopping {
			return
		}
		src := &a.output
		if a.outStage != nil {
			src = &a.rawOut
		}
		if src.Len() == 0 {
			if a.wantCloseWrite && !a.closeWriteSent && a.output.Len() == 0 {
				a.closeWriteSent = true
				a.writing = true
				a.l.write(writeReq{closeWrite: true})
			}
			return
		}
		if !a.enabled(Write) {
			return
		}
		if a.bw != nil {
			switch a.handOver(src, direct < maxDirectWrites && !a.b.rate.Load().limited()) {
			case handedToLoop:
				return
			case handedDirect:
				// onWrote may run the write callback: look again.
				direct++
				continue
			}
		}
		a.batch = a.writeBatch(src)
		if a.l.sys != nil && direct < maxDirectWrites && !a.b.rate.Load().limited() {
			direct++
			n, err := a.l.sys.tryWrite(a.batch)
			if n < int64(bufsLen(a.batch)) && err == nil {
				direct = maxDirectWrites // the kernel is full: the writer loop waits for room
			}
			if n > 0 || err != nil {
				// onWrote may run the write callback, which may change
				// anything: look again from the top.
				a.onWrote(loopEvent{wrote: true, n: n, err: err})
				continue
			}
		}
		a.wbufs = a.batch
		a.writing = true
		a.l.write(writeReq{bufs: &a.wbufs})
		return
	}
}

// writeBatch is the one place that decides what a byte write hands the
// transport: views of everything queued at the front of src, up to the
// per-write maximum (DefaultMaxWrite unless SetMaxWrite lowered it) and
// maxWriteSlices views, so a socket gets it in one writev. (A write to a
// BufferWriter moves chunks instead, within the same maximum: handOver.)
// The writer loop cuts it further to the rate allowance, once it has
// waited for one.
func (a *actorState) writeBatch(src *Buffer) [][]byte {
	batch := src.slices(a.batch[:0], int(a.b.maxWrite.Load()))
	if len(batch) > maxWriteSlices {
		// More would not fit the socket's one writev (sysConn.tryWrite),
		// and what it left out would look like a full kernel buffer.
		clear(batch[maxWriteSlices:])
		batch = batch[:maxWriteSlices]
	}
	return batch
}

func bufsLen(bufs [][]byte) int {
	n := 0
	for _, p := range bufs {
		n += len(p)
	}
	return n
}

// What handOver did.
const (
	handedNothing = iota // the first chunk does not fit: write bytes instead
	handedDirect         // the transport took it all at once, or failed
	handedToLoop         // the writer loop has (the rest of) it
)

// handOver gives a BufferWriter whole chunks from the front of src, up to
// the per-write maximum and the rate allowance. With direct it first
// offers them without waiting, on the actor's goroutine; what the
// transport does not take at once goes to the writer loop, which waits.
// It hands nothing when not even the first chunk fits the per-write
// maximum or the allowance: the byte path then waits for the rate and
// cuts the write to size, so a small SetMaxWrite still makes small writes
// (and each one is progress the write timeout sees).
func (a *actorState) handOver(src *Buffer, direct bool) int {
	limit := int(a.b.maxWrite.Load())
	if rs := a.b.rate.Load(); rs.limited() {
		limit = int(min(int64(limit), rs.allow(limiter.Write)))
	}
	if src.chunks[src.head].len() > limit {
		return handedNothing
	}
	if a.handed.n == 0 && src.n <= limit {
		// All of it fits, as it does whenever the output is drained
		// between writes: one move, not one per chunk.
		a.handed.moveAll(src)
	}
	for src.Len() > 0 {
		c := src.chunks[src.head]
		if a.handed.n > 0 && a.handed.n+c.len() > limit {
			break
		}
		a.handed.push(src.popFront())
	}
	if direct {
		before := a.handed.n
		n, err := a.bw.WriteBuffer(&a.handed, false)
		n, err = checkWriteBuffer(before, n, &a.handed, err, false)
		if a.handed.n == 0 || err != nil {
			a.handed.dropAll()
			a.flight = int(n) // taken: onWrote has nothing to drain
			a.onWrote(loopEvent{wrote: true, n: n, err: err})
			return handedDirect
		}
		if n > 0 {
			a.resetTimer(Write)
		}
	}
	a.flight = a.handed.n
	a.writing = true
	a.l.write(writeReq{buf: &a.handed})
	return handedToLoop
}

// lingerTime bounds how long Drain reads, after its half-close, waiting
// for the peer's EOF.
const lingerTime = 2 * time.Second

// checkDrain wakes Drain once the output is written and the transport
// half-closed. On a network connection it first lingers: it reads and
// drops whatever the peer still sends until the peer's EOF (or
// lingerTime), because closing a TCP connection with unread input makes
// the kernel send a reset instead of a FIN, and a reset throws away output
// the peer has not read yet (net/http's closeWriteAndWait does the same).
func (a *actorState) checkDrain() {
	if len(a.drainWaiters) == 0 {
		return
	}
	done := a.writeErr || (a.l == nil && !a.connecting)
	if a.closeWriteDone && !done {
		done = true
		if _, netConn := a.t.(net.Conn); netConn && !a.lingerDone &&
			!a.eof && !a.readErr && a.heldEnd == nil {
			if !a.lingering {
				a.lingering = true
				a.startTimer(timerLinger, lingerTime)
			}
			done = false
		}
	}
	if done {
		a.stopTimer(timerLinger)
		for _, c := range a.drainWaiters {
			close(c)
		}
		a.drainWaiters = nil
	}
}

// discard drops what a lingering read brought; its end ends lingering.
func (a *actorState) discard(r loopEvent) {
	n := 0
	for _, c := range r.chunks() {
		n += c.len()
	}
	r.release()
	a.l.delivered(n)
	if r.err != nil {
		a.lingerDone = true
	}
}

func (a *actorState) closeInIfDone() {
	if a.inC == nil || !(a.eof || a.readErr) || a.eofPending || a.input.Len() > 0 || a.rawIn.Len() > 0 {
		return
	}
	b := a.b
	b.chMu.Lock()
	if !b.inClosed {
		close(b.in)
		b.inClosed = true
	}
	b.chMu.Unlock()
	a.inC = nil
}

func (a *actorState) readHigh() int {
	high := a.b.rwm.Load().high
	if high == 0 && a.gotIn {
		high = DefaultChannelHighWatermark
	}
	return high
}

func (a *actorState) updateReadLimit() {
	if a.l == nil {
		return
	}
	var limit int64
	if a.lingerArmed() {
		limit = noLimit
	} else if a.enabled(Read) && !a.eof && !a.readErr && !a.stopping {
		limit = noLimit
		if high := a.readHigh(); high > 0 {
			limit = int64(high - a.input.Len() - a.rawHeld())
		}
	}
	a.l.setLimit(limit)
}

func (a *actorState) readSuspended() bool {
	high := a.readHigh()
	return high > 0 && a.input.Len() >= high
}

func (a *actorState) resetTimer(d Dir) {
	if d&Read != 0 && a.rArmed {
		a.stopTimer(timerRead)
		a.rArmed = false
	}
	if d&Write != 0 && a.wArmed {
		a.stopTimer(timerWrite)
		a.wArmed = false
	}
}

func (a *actorState) reconcileTimers() {
	rto := time.Duration(a.b.rto.Load())
	wantR := rto > 0 && a.enabled(Read) && !a.eof && !a.readErr && !a.readSuspended() && !a.throttled(limiter.Read)
	a.rArmed = a.arm(timerRead, a.rArmed, wantR, rto)
	wto := time.Duration(a.b.wto.Load())
	wantW := wto > 0 && a.enabled(Write) && !a.writeErr &&
		(a.pendingOut() > 0 || a.connecting || a.transportBuffered() > 0) && !a.throttled(limiter.Write)
	if wantW && !a.wArmed {
		a.wHeld = a.transportBuffered()
	}
	a.wArmed = a.arm(timerWrite, a.wArmed, wantW, wto)
}

// throttled reports whether the loops are waiting on a rate limit in d.
func (a *actorState) throttled(d limiter.Dir) bool {
	return a.l != nil && a.l.throttled[d].Load()
}

// timers are a bufferevent's timers: the read and write timeouts and a
// drain's linger, each made when it is first started (most bufferevents
// never set a timeout). They post to the mailbox when they fire (see
// Clock); due holds the time each was last started for, so that a firing
// of an earlier start, come late, is told apart.
type timers struct {
	t   [numTimers]Timer
	due [numTimers]time.Time
}

// The timers, by index (message.timer of the msgTimer each posts).
const (
	timerRead = iota
	timerWrite
	timerLinger
	numTimers
)

// startTimer starts timer i to fire after d.
func (a *actorState) startTimer(i int, d time.Duration) {
	if a.tm == nil {
		a.tm = new(timers)
	}
	clock := a.b.base.Clock()
	a.tm.due[i] = clock.Now().Add(d) // before the timer starts: it fires no sooner
	if a.tm.t[i] != nil {
		a.tm.t[i].Reset(d)
		return
	}
	mail, msg := &a.b.mail, message{kind: msgTimer, timer: uint8(i)}
	a.tm.t[i] = clock.AfterFunc(d, func() { mail.post(msg) })
}

// stopTimer stops timer i, if it was ever started.
func (a *actorState) stopTimer(i int) {
	if a.tm != nil && a.tm.t[i] != nil {
		a.tm.t[i].Stop()
	}
}

// timerDue reports whether timer i's firing is of its latest start: a
// firing that comes before the time it was started for belongs to an
// earlier start, stopped or re-armed since.
func (a *actorState) timerDue(i int) bool {
	return !a.b.base.Clock().Now().Before(a.tm.due[i])
}

// arm starts (want) or stops timer i, to fire after d, and reports
// whether it is armed now.
func (a *actorState) arm(i int, armed, want bool, d time.Duration) bool {
	switch {
	case want && !armed:
		a.startTimer(i, d)
		return true
	case !want && armed:
		a.stopTimer(i)
		return false
	}
	return armed
}

func (a *actorState) exit() {
	b := a.b
	a.stopping = true
	b.Free()
	for i := range numTimers {
		a.stopTimer(i)
	}
	if a.connCancel != nil {
		a.connCancel()
	}
	a.connWG.Wait()
	err := a.detach(b.opts&CloseOnFree != 0)
	b.leaveRate()
	for _, m := range b.mail.close() {
		if m.kind == msgConnected && m.tr.t != nil {
			m.tr.t.Close()
		}
		if m.c != nil {
			m.c.release()
		}
		if m.buf != nil {
			m.buf.release()
		}
	}
	a.input.release()
	a.output.release()
	a.rawIn.release()
	a.rawOut.release()
	a.handed.release()
	b.enabled.Store(0)
	b.cbs.Store(nil)
	b.setErr(fmt.Errorf("bufferevent: %w", ErrClosed))
	b.failOutput(fmt.Errorf("bufferevent: %w", ErrClosed))
	a.syncChannels()
	for _, e := range a.evq {
		select {
		case a.evC <- e:
		default:
		}
	}
	b.chMu.Lock()
	b.exited = true
	if b.in != nil && !b.inClosed {
		close(b.in)
		b.inClosed = true
	}
	if b.events != nil {
		close(b.events)
	}
	b.chMu.Unlock()
	if b.pair != nil {
		b.pair.unlink()
	}
	b.inLen.Store(0)
	// The mailbox is closed: no sender adds to outLen any more (they add
	// under its lock, and only while it is open), so this is final.
	b.outLen.Store(0)
	b.closeErr = err
	b.base.Unregister(b)
	close(b.done)
}

// Callbacks and their deferral.

func (a *actorState) deferred(topt TriggerOption) bool {
	return a.b.opts&DeferCallbacks != 0 || topt&TriggerDefer != 0
}

func (a *actorState) hasDeferred() bool { return a.defRead || a.defWrite || a.defEvents != 0 }

// notify runs the read or write callback now, or queues it under
// DeferCallbacks. Input delivered on the In channel has no read callback.
func (a *actorState) notify(d Dir) {
	if a.syncChannels(); d == Read && a.gotIn {
		return
	}
	a.callOrDefer(d, 0)
}

// callOrDefer runs the read or write callback now, or queues it when
// DeferCallbacks or topt asks.
func (a *actorState) callOrDefer(d Dir, topt TriggerOption) {
	if a.deferred(topt) {
		if d == Read {
			a.defRead = true
		} else {
			a.defWrite = true
		}
		return
	}
	a.call(d)
}

// syncChannels picks up the In and Events channels as soon as they exist,
// so that no input or event slips past a channel asked for before it.
func (a *actorState) syncChannels() {
	f := a.b.chans.Load()
	if f&chanIn != 0 && !a.gotIn {
		a.b.chMu.Lock()
		a.inC = a.b.in
		a.b.chMu.Unlock()
		a.gotIn = true
	}
	if f&chanEvents != 0 && !a.gotEv {
		a.b.chMu.Lock()
		a.evC = a.b.events
		a.b.chMu.Unlock()
		a.gotEv = true
		if a.heldEv != 0 {
			a.releaseHeld() // what came before anyone listened goes first
		}
	}
}

func (a *actorState) emit(ev Event, err error) {
	a.syncChannels()
	if ev&(EOF|Error) != 0 && err != nil {
		a.b.setErr(err)
	}
	if a.evC != nil {
		a.evq = append(a.evq, EventInfo{ev, err})
	} else if a.b.cbs.Load() == nil {
		// Nobody has set a callback yet: the caller is still setting up
		// (connected first, as le-proxy does, and about to set them).
		// libevent's callbacks would wait for its loop; these wait for
		// the first SetCallbacks.
		a.heldEv |= ev
		if a.heldErr == nil {
			a.heldErr = err
		}
		return
	}
	if a.deferred(0) {
		a.deferEvent(ev, err)
		return
	}
	a.callEvent(ev, err)
}

// releaseHeld delivers the events held for the first SetCallbacks: a
// connect first, then the rest in one call, as runDeferred does.
func (a *actorState) releaseHeld() {
	ev, err := a.heldEv, a.heldErr
	a.heldEv, a.heldErr = 0, nil
	if ev&Connected != 0 {
		ev &^= Connected
		a.emit(Connected, nil)
	}
	if ev != 0 {
		a.emit(ev, err)
	}
}

func (a *actorState) deferEvent(ev Event, err error) {
	a.defEvents |= ev
	if a.defErr == nil {
		a.defErr = err
	}
}

// runDeferred runs what was queued in libevent's order: a connect first,
// then read, then write, then the other event bits ORed into one call.
func (a *actorState) runDeferred() {
	a.scheduled = false
	if a.defEvents&Connected != 0 {
		a.defEvents &^= Connected
		a.callEvent(Connected, nil)
	}
	if a.defRead {
		a.defRead = false
		a.call(Read)
	}
	if a.defWrite {
		a.defWrite = false
		a.call(Write)
	}
	if ev := a.defEvents; ev != 0 {
		err := a.defErr
		a.defEvents, a.defErr = 0, nil
		a.callEvent(ev, err)
	}
}

func (a *actorState) trigger(d Dir, topt TriggerOption) {
	ignore := topt&TriggerIgnoreWatermarks != 0
	if d&Read != 0 && (ignore || a.input.Len() >= a.b.rwm.Load().low) {
		a.callOrDefer(Read, topt)
	}
	if d&Write != 0 {
		if _, low := a.writeMarks(); ignore || a.output.Len() <= low {
			a.callOrDefer(Write, topt)
		}
	}
}

func (a *actorState) triggerEvent(ev Event, topt TriggerOption) {
	if a.deferred(topt) {
		a.deferEvent(ev, nil)
		return
	}
	a.callEvent(ev, nil)
}

// The one place user code runs: a panic closes this bufferevent with an
// Error event carrying the panic, and nothing else.

func (a *actorState) call(d Dir) {
	cbs := a.b.cbs.Load()
	if cbs == nil || a.stopping {
		return
	}
	f := cbs.Read
	if d == Write {
		f = cbs.Write
	}
	if f == nil {
		return
	}
	a.publishOut() // OutputLen is exact in the bufferevent's own callbacks
	defer a.recoverPanic(false)
	f(&a.sess)
}

func (a *actorState) callEvent(ev Event, err error) {
	cbs := a.b.cbs.Load()
	if cbs == nil || cbs.Event == nil || a.stopping {
		return
	}
	defer a.recoverPanic(true)
	cbs.Event(&a.sess, ev, err)
}

func (a *actorState) callFunc(fn func(*Session), done chan struct{}) {
	defer close(done)
	a.publishOut()
	defer a.recoverPanic(false)
	fn(&a.sess)
}

// doFunc is what Do runs: fn, with a panic recovered here so that Do can
// return it, and then handled as any callback's panic.
type doFunc struct {
	fn  func(*Session)
	err error // the *PanicError, once fn panicked; read after done closes
}

func (d *doFunc) run(s *Session) {
	defer func() {
		if r := recover(); r != nil {
			d.err = &PanicError{Value: r, Stack: debug.Stack()}
			s.a.fail(Error, d.err, false)
		}
	}()
	d.fn(s)
}

func (a *actorState) callStage(st Stage, dst, src *Buffer, limit int, mode FlushMode) (res StageResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = StageError, &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return st.Process(dst, src, limit, mode)
}

func (a *actorState) recoverPanic(inEvent bool) {
	if r := recover(); r != nil {
		a.fail(Error, &PanicError{Value: r, Stack: debug.Stack()}, inEvent)
	}
}

// fail reports ev with err and stops the bufferevent. The event callback
// is skipped when it is the one that failed.
func (a *actorState) fail(ev Event, err error, skipCallback bool) {
	if a.failing || a.stopping {
		return
	}
	a.failing = true
	if errors.Is(err, ErrPanic) {
		a.b.setFailure(err) // a panic is a failure even after a clean EOF
	} else {
		a.b.setErr(err)
	}
	a.syncChannels()
	if a.evC != nil {
		a.evq = append(a.evq, EventInfo{ev, err})
	}
	if !skipCallback {
		a.callEvent(ev, err)
	}
	a.stopping = true
	a.b.Free()
}
