package actor

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

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
	l := a.io
	if l != nil && l.full {
		return a.waitForRoom()
	}
	if l == nil || l.sys == nil || l.readerUp || l.allowed() <= 0 {
		return false
	}
	if a.sendsInput() || a.sendsEvents() || a.takesOutput() || a.b.rate.Load().limited() {
		l.startReader()
		return false
	}
	if a.spare != nil {
		// Posts came since the last wait: the mailbox's block goes back
		// to the pool, so that an idle connection holds none.
		a.b.mail.release(&a.spare)
	}
	l.park.wait()
	// The sink is lent before the mailbox is looked at: a writer that
	// finds it lent, and nothing queued, writes after everything the actor
	// took (see borrowSink).
	lent := a.lendSink()
	if a.takePosted(lent) {
		return true
	}
	// One read per turn, as libevent's rule is: unlike the reader loop,
	// the actor does not gather several reads, since it has no hand-off
	// to amortise, and one read's chunk bounds what a busy connection
	// holds (measured: peak RSS under 50 streams 9.0-9.7 MiB against 10.6
	// with four reads per turn, throughput within the noise).
	room := l.readRoom()
	n, err := l.lookFirst(&room)
	if n == 0 && err == nil {
		n, err = l.src.readInto(&l.rbuf, room, true)
	}
	if lent {
		a.reclaimSink()
	}
	if l.park.unpark() && errors.Is(err, os.ErrDeadlineExceeded) {
		err = nil // the wake-up's deadline, not the stream's
	}
	if n == 0 && err == nil {
		// A wake-up ended the wait with nothing read: what woke the
		// actor is handled at once.
		a.takeWakeUp()
		return true
	}
	l.sizer.record(n, room)
	a.landRead(&l.rbuf, n, err)
	return true
}

// waitsForRoom reports whether the actor, whose socket's kernel took only
// part of a direct write, waits for room in the socket itself
// (waitForRoom) rather than handing the rest to the writer loop. It does
// while, as for waitInSocket, its mailbox is all it would otherwise wait
// for, and while it does not want to read (reading disabled or ended, or
// the input at its high watermark: the echo that pauses its reading while
// its client is behind), since it cannot wait in both directions at once.
// It then makes no goroutine hand-off per full kernel buffer: measured on
// a loopback echo stream, 7-12% less CPU per byte than with the writer
// loop, throughput within the noise (docs/benchmarks.md).
func (a *actorState) waitsForRoom() bool {
	l := a.io
	if l == nil || l.sys == nil || l.readerUp || a.stopping || a.writeErr || !a.enabled(Write) || a.pendingOut() == 0 ||
		a.sendsInput() || a.sendsEvents() || a.takesOutput() || a.b.rate.Load().limited() {
		return false
	}
	a.updateReadLimit()
	return l.allowed() <= 0
}

// waitForRoom is the wait of an actor that waits for room in its socket
// (waitsForRoom, pumpWrite set io.full), and reports whether it waited:
// as waitInSocket's, but in the socket's write readiness, woken by every
// post through the write deadline (parker). What changed since pumpWrite
// decided is looked at again first: if the actor now wants to read, or has
// something else to wait for, it goes round once more, and pumpWrite hands
// what the kernel does not take to the writer loop. After a wait, the
// next pumpWrite writes directly again.
//
//go:noinline
func (a *actorState) waitForRoom() bool {
	l := a.io
	l.full = false
	if a.writing || !a.waitsForRoom() {
		return true
	}
	l.park.waitRoom()
	if a.takePosted(false) {
		return true
	}
	// An error (the socket closed) is the next direct write's to report.
	_ = l.sys.waitRoom()
	if l.park.unpark() {
		a.takeWakeUp()
	}
	return true
}

// takePosted handles what was posted, or written, before the actor began
// waiting in its socket, since that did not wake it; it reports whether
// there was any, the actor then being done waiting. With lent, it first
// takes back the sink it lent (lendSink).
//
//go:noinline
func (a *actorState) takePosted(lent bool) bool {
	// Two one-case selects, not one of two cases: a one-case select
	// without waiting looks at an empty channel without locking it, and
	// this runs before every wait of a busy connection.
	select {
	case <-a.b.mail.wakeC:
		a.io.park.unpark()
		if lent {
			a.reclaimSink()
		}
		a.handleMail()
		return true
	default:
	}
	select {
	case ev := <-a.io.events: // only the writer loop sends here: the reader does not run
		a.io.park.unpark()
		if lent {
			a.reclaimSink()
		}
		a.onWrote(ev)
		return true
	default:
		return false
	}
}

// takeWakeUp handles what ended the actor's wait in its socket with
// nothing read: a post (a Write, a setter, a timer, a turn) or the writer
// loop's result. Taking it here, rather than going round run once more,
// spares a turn that would find nothing new (settle) and a wait in the
// socket that would find the post at once (takePosted): a Write to a
// parked actor costs one turn, not two. A wake-up whose cause is gone (a
// post another wake-up's turn already took) takes nothing; run then
// settles and waits again, as before.
//
//go:noinline
func (a *actorState) takeWakeUp() {
	// One-case selects, as in takePosted; the parker is already unparked.
	// A wake-up of Free is left to run, which stops before anything else.
	if isClosedChan(a.b.closing) {
		return
	}
	select {
	case <-a.b.mail.wakeC:
		a.handleMail()
		return
	default:
	}
	select {
	case ev := <-a.io.events: // only the writer loop sends here: the reader does not run
		a.onWrote(ev)
	default:
	}
}

// A parker lets the actor of a socket wait for the socket itself when it
// has nothing else to wait for: instead of a reader loop blocking in read
// and handing each read over (a goroutine wake, and on an idle
// multi-core machine a wake of another thread, per message), the actor
// waits in the socket's read through its side door and reads what comes
// on its own goroutine, as a goroutine-per-connection server does.
//
// While it waits there, the actor cannot see its mailbox, so whoever
// posts to it (every wake-up goes through mailbox.wake) or completes a
// write for it (the writer loop) wakes it: sets a read deadline in the
// past, which ends the wait at once. The actor clears the deadline when it
// wakes. The states make that exact: only a waker that moves the parker
// from waiting to woken touches the deadline, and the actor, seeing it
// was woken, takes mu, which the waker holds until the deadline is set,
// before clearing it; so no past deadline outlives a wake-up.
//
// The actor waits in the socket's read (wait), or, while it does not want
// to read and the kernel would take no more of its output, for room to
// write (waitRoom); a wake-up then ends the wait through the write
// deadline instead, and the state says which one a waker sets.
type parker struct {
	state atomic.Int32 // parkRunning, parkWaiting, parkWaitingRoom or parkWoken
	mu    sync.Mutex   // held by a waker while it sets the deadline
	conn  deadliner
	room  bool // the actor's: its last wait was waitRoom's
}

const (
	parkRunning     = iota // the actor is not waiting in the socket
	parkWaiting            // the actor waits in the socket's read
	parkWaitingRoom        // the actor waits for room to write
	parkWoken              // a waker ended (or is ending) the wait
)

// wait marks the actor as waiting in the socket's read; the actor then
// looks once more at what a wake-up would have told it, before it waits.
func (p *parker) wait() {
	p.room = false
	p.state.Store(parkWaiting)
}

// waitRoom is wait for a wait for room to write.
func (p *parker) waitRoom() {
	p.room = true
	p.state.Store(parkWaitingRoom)
}

// unpark marks the actor as running again and reports whether it was
// woken, clearing the wake-up's deadline if so.
func (p *parker) unpark() (woken bool) {
	waiting := int32(parkWaiting)
	if p.room {
		waiting = parkWaitingRoom
	}
	if p.state.CompareAndSwap(waiting, parkRunning) {
		return false
	}
	p.mu.Lock()
	p.setDeadline(p.room, time.Time{})
	p.state.Store(parkRunning)
	p.mu.Unlock()
	return true
}

// wake ends the actor's wait in the socket, if it is waiting there. It is
// cheap when it is not: one atomic load.
func (p *parker) wake() {
	if st := p.state.Load(); st != parkWaiting && st != parkWaitingRoom {
		return
	}
	p.mu.Lock()
	for {
		st := p.state.Load()
		if st != parkWaiting && st != parkWaitingRoom {
			break
		}
		if p.state.CompareAndSwap(st, parkWoken) {
			p.setDeadline(st == parkWaitingRoom, aLongTimeAgo)
			break
		}
	}
	p.mu.Unlock()
}

// setDeadline sets the deadline that ends a wait: the write deadline for
// a wait for room, else the read deadline.
func (p *parker) setDeadline(room bool, t time.Time) {
	if room {
		p.conn.SetWriteDeadline(t)
		return
	}
	p.conn.SetReadDeadline(t)
}

// aLongTimeAgo is a deadline that has passed: setting it ends a wait.
var aLongTimeAgo = time.Unix(1, 0)
