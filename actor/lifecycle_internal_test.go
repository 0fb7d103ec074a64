package actor

import (
	"testing"

	"github.com/bevgo/bev/internal/testkit"
)

// Tests of lifecycle.go: what a stopped bufferevent shows, however its
// stop interleaves with other calls.

// A bufferevent stays on its Base's books until its Done is closed, so
// that Base.Close, which joins what it finds there, never returns while
// the actor of a bufferevent freed before (by Free, from a callback say)
// is still exiting. exit used to unregister first: a Base.Close that
// took its list between the two returned with that bufferevent's Done
// still open and its actor running (FuzzPairOps found it:
// testdata/fuzz/FuzzPairOps/base-close-while-freed-end-exits). Holding
// the Base's lock holds an exiting actor in Unregister; its Done must be
// closed by then.
func TestDoneClosedBeforeUnregister(t *testing.T) {
	base := NewBase()
	defer base.Close()
	a, b, err := NewPair(base, 0)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	base.mu.Lock()
	locked := true
	defer func() {
		if locked {
			base.mu.Unlock()
		}
	}()
	a.Free()
	testkit.Recv(t, a.Done(), "Done of a freed bufferevent while its Base's lock is held")
	base.mu.Unlock()
	locked = false
	if err := base.Close(); err != nil {
		t.Errorf("Base.Close() = %v", err)
	}
	if !isClosedChan(b.Done()) {
		t.Errorf("Done of the other end not closed after Base.Close returned")
	}
}

// Enabled is 0 once the bufferevent has stopped, as documented, even when
// an Enable (or an In) whose closed check passed just before the stop
// sets its bits after exit cleared them. FuzzPairOps found Enabled() ==
// Read after Close (testdata/fuzz/FuzzPairOps/enable-races-stop): the
// program's Enable raced with the end's own Drain closing it. The race
// needs the caller held between its check and its Or for the whole of
// exit, so the late Or is made by hand here.
func TestEnabledZeroAfterLateEnable(t *testing.T) {
	a := stoppedEnd(t)
	a.enabled.Or(uint32(Read)) // what Enable and In do after their checks
	if got := a.Enabled(); got != 0 {
		t.Errorf("Enabled() = %v after Close, want 0", got)
	}
}

// Callbacks is the zero value once the bufferevent has stopped, as
// documented, even when a SetCallbacks whose closed check passed just
// before the stop stores its callbacks after exit cleared them.
// FuzzPairOps found them after Close
// (testdata/fuzz/FuzzPairOps/setcallbacks-races-stop): Free, then
// SetCallbacks while the actor was exiting. The late store is made by
// hand here, as the race needs SetCallbacks to land between exit's
// clearing and its closing of Done.
func TestCallbacksZeroAfterLateSet(t *testing.T) {
	a := stoppedEnd(t)
	a.cbs.Swap(&Callbacks{Read: func(*Session) {}}) // what SetCallbacks does after its check
	if cbs := a.Callbacks(); cbs.Read != nil || cbs.Write != nil || cbs.Event != nil {
		t.Errorf("Callbacks() after Close is not the zero value")
	}
}

// stoppedEnd returns one end of a pair made without a Base, after both
// ends were closed.
func stoppedEnd(t *testing.T) *Bufferevent {
	t.Helper()
	a, b, err := NewPair(nil, 0)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	a.Close()
	b.Close()
	return a
}
