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
// is enabled, no output stage (but a Passer passing bytes unchanged), rate
// limit or half-close applies, and no write callback waits to hear of it
// (libevent runs it after every write that drains the output; with none
// set, a write nobody hears of is the same write). What the kernel does
// not take goes the usual way, into the output through the mailbox, before
// the sink goes back to the actor, so one writer's bytes stay in order; a
// write that fails hands its error to the actor (lentWriteFailed), which
// reports it as its own. The bytes a borrower writes never enter the
// output, so OutputLen never counts them.
//
// sinkState moves: sinkHeld → sinkLent by the actor, before it looks at
// its mailbox a last time and waits in its socket (lendSink); sinkLent →
// sinkBorrowed by one writer (borrowSink), and back to sinkLent when the
// kernel took everything. The actor, as soon as it wakes or finds a post,
// takes the sink back (reclaimSink): sinkLent → sinkHeld, or, while a
// borrower writes, sinkBorrowed → sinkWanted, and it then runs without
// writing (pumpWrite waits for sinkHeld) until the borrower, finding
// sinkWanted, gives the sink back to it (sinkHeld) and wakes it. A
// borrower that leaves bytes behind posts them, then gives the sink to
// the actor the same way. Nobody waits for anybody: the actor's reads,
// callbacks and messages go on while a borrower's writev runs. The one
// wait is detach's (awaitSink), before it lets go of the socket.
const (
	sinkHeld     = iota // the actor's: it may write (whenever it runs)
	sinkLent            // the actor waits in its socket with nothing to write
	sinkBorrowed        // a writer on another goroutine writes through it
	sinkWanted          // as sinkBorrowed, and the actor woke: it waits for it
)

// lendSink lends the sink to writers on other goroutines if a write of
// theirs would be exactly the actor's own (see above), and reports whether
// it did. The actor calls it just before it waits in its socket.
func (a *actorState) lendSink() bool {
	if a.writing || a.pendingOut() > 0 || !a.passes(a.outStage) || a.writeErr || a.stopping ||
		a.closeWrite.asked() || !a.enabled(Write) || a.b.rate.Load().limited() {
		return false
	}
	if cbs := a.b.cbs.Load(); cbs != nil && cbs.Write != nil {
		return false
	}
	// Only a sink the actor holds is lent: one a borrower still has (the
	// actor woke and slept again meanwhile) comes back first.
	return a.b.sinkState.CompareAndSwap(sinkHeld, sinkLent)
}

// reclaimSink takes the sink back from writers, or, while one writes
// through it, asks for it back (sinkWanted: the borrower then gives it back
// and wakes the actor). The actor calls it as soon as it wakes from a wait
// it lent the sink for; it never waits.
func (a *actorState) reclaimSink() {
	st := &a.b.sinkState
	for {
		switch st.Load() {
		case sinkLent:
			if st.CompareAndSwap(sinkLent, sinkHeld) {
				return
			}
		case sinkBorrowed:
			if st.CompareAndSwap(sinkBorrowed, sinkWanted) {
				return
			}
		default: // held, or wanted: nothing more to do
			return
		}
		// A borrower moved it between the load and the swap: look again
		// (it moves it at most twice per write).
	}
}

// awaitSink waits (yielding) until a borrower has given the sink back:
// detach calls it before it lets go of the transport, whose sink the
// borrower may still be writing through. It is the one wait for the sink,
// on a path that runs once per transport.
func (a *actorState) awaitSink() {
	for a.b.sinkState.Load() != sinkHeld {
		runtime.Gosched()
	}
}

// sinkHeldHere reports whether the actor may write: the sink is not with a
// borrower.
func (a *actorState) sinkHeldHere() bool { return a.b.sinkState.Load() == sinkHeld }

// borrowSink takes the sink the actor lent for a write from this
// goroutine, or returns nil: the actor runs, something posted waits for it,
// or a setting changed since it lent it. A borrower gives it back with
// returnSink.
//
// What this goroutine posted before (a write that found the actor running,
// a SetTransport) must reach the socket first. It is either still queued,
// which the first check sees, or taken, and the actor takes its mailbox
// only after taking back the sink (reclaimSink), which it lends again only
// once the output is written. So the check comes before the swap: after
// it, the actor could take the queue between the swap and a later look.
func (b *Bufferevent) borrowSink() *viewSink {
	if b.mail.queued.Load() != 0 || b.sinkState.Load() != sinkLent ||
		!b.sinkState.CompareAndSwap(sinkLent, sinkBorrowed) {
		return nil
	}
	cbs := b.cbs.Load()
	// outStage is set before the actor starts and never changes.
	if b.enabledDirs()&Write == 0 || cbs != nil && cbs.Write != nil || b.rate.Load().limited() ||
		!stagePasses(b.a.outStage) {
		b.returnSink(true) // untouched: lent again, or to the actor if it woke
		return nil
	}
	return b.lentSink.Load()
}

// returnSink gives a borrowed sink back: lent again when the kernel took
// all of the write and the actor still waits, to the actor otherwise
// (after the caller posted the rest), waking it if it asked for it back
// meanwhile, since it may have output waiting for the sink.
func (b *Bufferevent) returnSink(all bool) {
	if all && b.sinkState.CompareAndSwap(sinkBorrowed, sinkLent) {
		return
	}
	if b.sinkState.Swap(sinkHeld) == sinkWanted {
		b.mail.wake()
	}
}

// writeThrough writes p, or the front of buf when p is nil (total bytes
// either way), through the sink if the actor lent it, and returns how many
// bytes the kernel took. When that was all of them, the sink is lent again;
// otherwise, if it was borrowed (held), the caller posts the rest the
// usual way and then gives the sink back with returnSink(false), so that
// the rest comes before any later write through it. A failed write's error
// has gone to the actor already (lentWriteFailed).
func (b *Bufferevent) writeThrough(p []byte, buf *Buffer, total int) (n int64, held bool) {
	s := b.borrowSink()
	if s == nil {
		return 0, false
	}
	n, err := s.writeLent(p, buf, int(b.maxWrite.Load()))
	if n == int64(total) {
		b.returnSink(true)
		return n, false
	}
	b.lentWriteFailed(err)
	return n, true
}

// lentWriteFailed hands the failure of a write through the lent sink, if
// err is one, to the actor, which reports it as its own write's: the
// kernel reports a reset to one call only, so the actor's next write or
// read would not see it again.
func (b *Bufferevent) lentWriteFailed(err error) {
	if err != nil {
		b.lentErr.CompareAndSwap(nil, &err) // before the sink goes back: see takeLentFailure
		b.mail.post(message{kind: msgWriteFailed, tr: &transportMsg{err: err}})
	}
}

// takeLentFailure takes in the failure of a borrower's write before its
// message arrives. The kernel reports a reset once: when a borrower's
// write took it, the actor's read returns 0, which endRead must not
// report as a clean end of stream, but the borrower's msgWriteFailed may
// still be queued behind that read, or its write under way. A borrower
// stores its failure (lentErr) before it gives the sink back, so once the
// sink is back (awaitSink: a borrower never waits for the actor) the
// failure is known, and taking it now (writeFailed; the message then
// finds it reported) lets endRead see the reset (writeReset). Found by
// FuzzSocketOps; TestWriteThroughResetIsNoEOF.
func (a *actorState) takeLentFailure() {
	a.awaitSink()
	if p := a.b.lentErr.Load(); p != nil {
		a.writeFailed(*p)
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
	n, err := s.write(noLimit, false) // counted in Written there
	s.release()
	return n, err
}
