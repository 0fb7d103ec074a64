package actor

import "runtime"

// Lending the sink. A socket's actor that waits in its socket (see
// waitInSocket) with nothing to write lends its sink to writers on other
// goroutines: a Write or WriteBuffer that finds it lent writes through it
// at once, on the writer's goroutine, what the kernel takes, and wakes
// nobody. That is what a relay's bytes cost in a goroutine-per-connection
// program, where the goroutine that read them writes them; without it,
// each relayed read woke the other side's actor (a past read deadline, a
// goroutine switch, and the read the woken actor retries before it waits
// again) only for it to make the one writev the writer could have made.
//
// The sink is lent only while such a write is exactly what the actor would
// do with the bytes at once: nothing is queued or being written, writing
// is enabled, no output stage, rate limit or half-close applies, and no
// write callback waits to hear of it (libevent runs it after every write
// that drains the output; with none set, a write nobody hears of is the
// same write). What the kernel does not take, or a write that fails, goes
// the usual way, into the output through the mailbox, before the sink goes
// back to the actor, so one writer's bytes stay in order. The bytes a
// borrower writes never enter the output, so OutputLen never counts them.
//
// sinkState moves: sinkHeld → sinkLent by the actor, before it looks at
// its mailbox a last time and waits in its socket (lendSink); sinkLent →
// sinkHeld by the actor as soon as it wakes or finds a post (reclaimSink),
// before it does anything else; sinkLent →
// sinkBorrowed by one writer (borrowSink), and back to sinkLent when the
// kernel took everything, or to sinkHeld once the rest is posted
// (returnSink). The actor, waking while a borrower writes, yields until it
// is done: one non-blocking writev.
const (
	sinkHeld     = iota // the actor's: it may write (whenever it runs)
	sinkLent            // the actor waits in its socket with nothing to write
	sinkBorrowed        // a writer on another goroutine writes through it
)

// lendSink lends the sink to writers on other goroutines if a write of
// theirs would be exactly the actor's own (see above), and reports whether
// it did. The actor calls it just before it waits in its socket.
func (a *actorState) lendSink() bool {
	if a.writing || a.pendingOut() > 0 || a.outStage != nil || a.writeErr || a.stopping ||
		a.closeWrite.asked() || !a.enabled(Write) || a.b.rate.Load().limited() {
		return false
	}
	if cbs := a.b.cbs.Load(); cbs != nil && cbs.Write != nil {
		return false
	}
	s, ok := a.io.out.(*viewSink)
	if !ok || s.sys == nil {
		return false
	}
	a.b.lentSink.Store(s)
	a.b.sinkState.Store(sinkLent)
	return true
}

// reclaimSink takes the sink back from writers, waiting while one writes
// through it. The actor calls it as soon as it wakes from a wait it lent
// the sink for.
func (a *actorState) reclaimSink() {
	for !a.b.sinkState.CompareAndSwap(sinkLent, sinkHeld) {
		if a.b.sinkState.Load() == sinkHeld {
			return // a borrower gave it back to the actor (returnSink)
		}
		runtime.Gosched() // a borrower's writev is under way
	}
}

// borrowSink takes the sink the actor lent for a write from this
// goroutine, or returns nil: the actor runs, or a setting changed since it
// lent it (a setter's wake-up makes it take the sink back, but it may not
// have yet). A borrower gives it back with returnSink.
func (b *Bufferevent) borrowSink() *viewSink {
	if b.sinkState.Load() != sinkLent || !b.sinkState.CompareAndSwap(sinkLent, sinkBorrowed) {
		return nil
	}
	// Anything posted and not yet taken (a write of this goroutine's
	// that found the actor running, a SetTransport) comes first: the
	// actor lent the sink before it last looked at its mailbox, and takes
	// it back before it handles what it finds there.
	cbs := b.cbs.Load()
	if b.mail.queued.Load() != 0 || Dir(b.enabled.Load())&Write == 0 ||
		cbs != nil && cbs.Write != nil || b.rate.Load().limited() {
		b.sinkState.Store(sinkLent)
		return nil
	}
	return b.lentSink.Load()
}

// returnSink gives a borrowed sink back: lent again when the kernel took
// all of the write, to the actor otherwise, after the caller posted the
// rest (the post wakes the actor, which then writes it).
func (b *Bufferevent) returnSink(all bool) {
	if all {
		b.sinkState.Store(sinkLent)
	} else {
		b.sinkState.Store(sinkHeld)
	}
}

// writeLent is a borrower's write through the sink: one writev of what
// the socket takes at once of p, or, with src, of src's first chunks, at
// most max bytes. It uses the sink's views, which the actor does not
// while it lends the sink (nothing is being written).
func (s *viewSink) writeLent(p []byte, src *Buffer, max int) (int64, error) {
	if src != nil {
		s.take(src, max)
	} else {
		s.views = append(s.views[:0], p[:min(len(p), max)])
	}
	n, err := s.sys.tryWrite(s.views)
	s.release()
	return n, err
}
