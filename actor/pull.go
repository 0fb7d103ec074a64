package actor

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
	l := a.io
	if l == nil || l.pull == nil {
		return false
	}
	if a.b.rate.Load().limited() {
		l.pull.NotifyReadable(nil)
		l.pull = nil
		l.startReader()
		return false
	}
	if a.endWhileDisabled != nil || a.readEnd.ended() || a.stopping {
		return false
	}
	a.updateReadLimit()
	if l.allowed() <= 0 {
		return false
	}
	want := l.readRoom()
	got, err := l.src.readInto(&l.rbuf, want, false)
	if got > 0 && got < want && err == nil {
		var more int
		more, err = l.src.readInto(&l.rbuf, want-got, false)
		got += more
	}
	if got == 0 && err == nil {
		return false
	}
	l.sizer.record(got, want)
	a.landRead(&l.rbuf, got, err)
	return got == want && err == nil
}
