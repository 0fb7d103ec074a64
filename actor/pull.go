package actor

import "fmt"

// pullRead reads a readPuller transport on the actor's goroutine, within
// the limits the reader loop would observe (the read high watermark, the
// per-read maximum, reading enabled), and delivers what it took as the
// reader loop's reads are delivered. It reports whether the transport
// may hold more: it took all it asked for. When it took less, it asks
// once more at once, since the end of the stream or an error may wait
// behind those bytes and a transport announces only what is new; what
// comes after that, the transport's wake function announces. A rate
// limit hands reading to the reader loop for good.
func (a *actorState) pullRead() bool {
	l := a.l
	if l == nil || l.pull == nil {
		return false
	}
	if a.b.rate.Load().limited() {
		l.pull.NotifyReadable(nil)
		l.pull = nil
		l.startReader()
		return false
	}
	if a.heldEnd != nil || a.eof || a.readErr || a.stopping {
		return false
	}
	a.updateReadLimit()
	allowed := l.allowed()
	if allowed <= 0 {
		return false
	}
	want := l.sizer.next(int(min(allowed, l.maxRead.Load())))
	got, err := l.tryPull(want)
	if got > 0 && got < want && err == nil {
		var more int
		more, err = l.tryPull(want - got)
		got += more
	}
	if got == 0 && err == nil {
		return false
	}
	l.sizer.record(got, want)
	l.inflight.Add(int64(got)) // gotRead takes it off again, as for the reader loop's reads
	more := got == want && err == nil
	if a.lingering {
		for {
			var ev loopEvent
			l.rbuf.popChunks(&ev)
			if l.rbuf.n == 0 {
				ev.err = err
				a.onRead(ev)
				return more
			}
			a.onRead(ev)
		}
	}
	// The chunks move as one, not through loop events of maxMoved
	// chunks each as the reader loop's must.
	a.readDst().moveAll(&l.rbuf)
	a.gotRead(got, err)
	return more
}

// tryPull takes at most max bytes from the transport into rbuf and
// returns how many it took, with the transport's error, or ErrInvalid
// when the transport misreports what it moved.
func (l *loops) tryPull(max int) (int, error) {
	before := l.rbuf.n
	n, err := l.pull.TryReadBuffer(&l.rbuf, max)
	got := l.rbuf.n - before
	if n != got && err == nil {
		err = fmt.Errorf("%w: transport's TryReadBuffer reported %d bytes and moved %d", ErrInvalid, n, got)
	}
	return got, err
}
