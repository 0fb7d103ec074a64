package actor

import ()

// run is the actor goroutine: it brings the state in line (settle), then
// waits for the next thing to handle, in its socket (waitInSocket) or on
// its channels (wait), until the bufferevent stops; exit then releases
// everything.
func (a *actorState) run() {
	defer a.exit()
	for {
		a.settle()
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
//
// sendsInput reports whether input waits to be sent on In.
func (a *actorState) sendsInput() bool { return a.inC != nil && a.input.Len() > 0 }

// sendsEvents reports whether an event waits to be sent on Events.
func (a *actorState) sendsEvents() bool { return a.evC != nil && len(a.evq) > 0 }

// takesOutput reports whether the actor receives from the Out channel:
// it exists and the output has room.
func (a *actorState) takesOutput() bool {
	return a.b.outUsed.Load() && a.outRoom() && !a.writeErr
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
		sendC <-chan sendPiece
	)
	if a.io != nil {
		loopC = a.io.events
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
	case <-b.mail.wakeC:
		a.handleMail()
	case ev := <-loopC:
		if ev.wrote {
			a.onWrote(ev)
		} else {
			l := a.io
			a.landRead(ev.in, int(ev.n), ev.err)
			// Only now, after landRead lowered the read limit: see
			// transportIO.allowed.
			l.delivered(int(ev.n))
			ev.release() // the Buffer back to its pool: landRead took its bytes
		}
	case inC <- head:
		a.input.popChunk()
	case p := <-outC:
		a.output.AppendOwned(p)
	case p := <-sendC:
		// Writes posted before the Send go first: the select may have
		// found the piece and their wake-up both ready.
		if a.b.mail.queued.Load() != 0 {
			a.handleMailBefore(p.after)
		}
		a.counted += len(p.p) // Send counted it in outLen (see publishOut)
		a.output.AppendOwned(p.p)
	case evC <- ev:
		a.evq[0] = EventInfo{}
		a.evq = a.evq[1:]
	}
}

// settle brings everything in line with the state after a message: runs the
// stages, starts writes, runs deferred callbacks when there is no Base,
// and re-arms the reader and the timers.
func (a *actorState) settle() {
	a.turns++
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
		a.b.mail.wake() // look again next turn
	}
	if a.b.base != nil && a.hasDeferred() && !a.scheduled {
		a.scheduled = true
		if a.b.turn == nil {
			a.b.turn = make(chan struct{})
		}
		a.b.base.schedule(a.b, int(a.b.pri.Load()))
	}
	a.updateReadLimit()
	a.reconcileTimers()
	if n := int64(a.input.Len()); a.b.inLen.Load() != n { // only the actor stores it: a load spares the exchange
		a.b.inLen.Store(n)
	}
	a.publishOut()
}

// handleMail handles every message queued in the mailbox, in order.
func (a *actorState) handleMail() {
	// Posts that came since the select woke have filled wakeC again,
	// but take below gets their messages now: clear it first, or the next
	// select wakes to an empty queue. (Clearing after take could eat the
	// wake-up of a message take missed.)
	select {
	case <-a.b.mail.wakeC:
	default:
	}
	a.handleTaken(a.b.mail.take(a.spare))
}

// handleMailBefore handles, in order, the messages queued before a Send's
// piece that was numbered after (see mailbox.takeBefore); later ones wait
// for their wake-up.
func (a *actorState) handleMailBefore(after uint64) {
	a.handleTaken(a.b.mail.takeBefore(after, a.spare))
}

// handleTaken handles msgs, taken from the mailbox into a.spare's array,
// in order, and keeps the array, cleared, for the next take.
func (a *actorState) handleTaken(msgs []message) {
	for i := range msgs {
		a.handle(&msgs[i])
		msgs[i] = message{}
	}
	a.spare = msgs[:0]
}

// handle applies one message posted by another goroutine: a write's
// bytes join the output, settings are acted on, results of a connect, a
// handshake or a timer are taken; settle then brings the rest in line.
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
		carriers.Put(m.buf) // empty now
	case msgFunc:
		a.callFunc(m.fn, m.done)
	case msgEnable:
		a.onEnable(m.dir)
	case msgTimeouts:
		a.disarmTimeouts(Read | Write)
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
		a.releaseEarly()
	case msgProgress:
		// Bytes a buffered transport held downstream moved on: that is
		// write progress, and the transport may take more now.
		a.disarmTimeouts(Write)
	case msgTimer:
		a.onTimer()
	case msgWriteFailed:
		a.writeFailed(m.tr.err)
	case msgTurn:
		a.runDeferred()
		a.b.turn <- struct{}{} // the turn is over (see Base.dispatch)
	}
}
