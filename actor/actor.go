package actor

import (
	"context"
	"sync"
)

// actorState is everything the actor goroutine owns. No other goroutine
// touches it, so nothing here is locked (the sink's batch, in io, is the
// writer loop's while a write is out). Its small fields are
// grouped so that the Bufferevent holding it stays within a 1 KiB
// allocation (TestBuffereventSize): every idle connection pays for it.
// The read and write sides' small state machines are named states
// (states.go); no more than three of the booleans left describe one thing.
type actorState struct {
	b    *Bufferevent
	sess Session

	input, output Buffer
	rawIn, rawOut Buffer // what the transport gave / will get, with stages
	inStage       Stage
	outStage      Stage

	t       Transport
	io      *transportIO // the transport's loops, read credit, source and sink; nil until it is ready for I/O
	taken   int          // bytes the sink moved out of the output for the write that is out (pendingOut counts them)
	head    [][]byte     // views of the input, reused by wait to send the first on In
	spare   []message    // the mailbox's last queue, reused by the next take
	writing bool         // a write or half-close is with the writer loop: one at a time
	ownsT   bool         // the transport is ours (a pair's pipe): always close it
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

	connecting bool // a connect's dial or a handshake runs on connWG (connCancel ends it)
	// handshake: the transport is a Handshaker whose handshake has not
	// run; its loops start once it has (see startHandshake).
	handshake  bool
	connCancel context.CancelFunc
	connWG     sync.WaitGroup

	readEnd    readEnd         // how the read side ended, if it has
	closeWrite closeWriteState // where the write side's half-close is
	linger     lingerState     // where a Drain's linger is
	writeErr   bool            // a write failed: the output takes no more
	// endWhileDisabled is an EOF or read error that came while reading was
	// disabled (a read already under way when Disable came): it is
	// reported when reading is enabled again, as libevent, which does not
	// read while reading is disabled, would only then notice it.
	endWhileDisabled error
	// earlyEv and earlyErr are events that came before any callbacks were
	// set, with no Events channel to take them: delivered when the first
	// SetCallbacks arrives (see emit).
	earlyEv      Event
	earlyErr     error
	drainWaiters []chan struct{} // closed by checkDrain once the output is written and half-closed

	tm             *timers // made when a timeout is first armed
	rArmed, wArmed bool    // the read, write timeout runs (see reconcileTimers)
	wHeld          int     // transportBuffered when the write timer was armed

	unseenInput bool // input arrived that no read callback has seen
	// The deferred callbacks waiting for a turn (runDeferred), and
	// whether one was asked of the Base.
	defRead   bool
	defWrite  bool
	scheduled bool
	defEvents Event
	defErr    error

	inC        chan []byte    // nil once closed
	evC        chan EventInfo // the Events channel once asked for
	evq        []EventInfo    // events waiting to be sent on evC
	inChanUsed bool           // In was called: input goes to the channel
	evChanUsed bool           // Events was called: events go to the channel

	stopping bool // Free was called or the bufferevent failed: run ends after this turn
	failing  bool // fail has begun: a second failure is not reported
	// turns counts the actor's turns (settle): what a message costs, for
	// tests (TestWriteToParkedActorOneTurn).
	turns uint32

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

// init ties the state to b and its stages and freezes the buffer ends
// users may not touch.
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

// enabled reports whether any direction in d is enabled. The actor loads
// the bits each time: any goroutine may change them (see
// Bufferevent.enabled).
func (a *actorState) enabled(d Dir) bool { return a.b.enabledDirs()&d != 0 }
