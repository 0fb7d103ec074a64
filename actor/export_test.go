package actor

// RaceEnabled lets the black-box tests skip allocation pins under -race.
const RaceEnabled = raceEnabled

// HoldFailedAnnounce takes the lock under which a failure of b's output
// is announced on Failed (failOutput's second half, after it recorded
// the cause), so that a failure recorded meanwhile is not announced until
// release: a test puts a close between the two. Nothing else b does
// while held may take the lock (Failed, In, Out, Events and the first
// Send do).
func HoldFailedAnnounce(b *Bufferevent) (release func()) {
	b.chMu.Lock()
	return b.chMu.Unlock
}

// OutputFailureRecorded reports whether b's output has recorded a failure
// (what Write and Send return from then on), announced on Failed or not.
func OutputFailureRecorded(b *Bufferevent) bool { return b.writeErr() != nil }

// ReadSharesHeld returns how many readers hold a share of the read budget
// (bigReads): none once every bufferevent is freed.
func ReadSharesHeld() int32 { return bigReads.held.Load() }
