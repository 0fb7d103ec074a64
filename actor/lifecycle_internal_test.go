package actor

import (
	"testing"

	"github.com/bevgo/bev/internal/testkit"
)

// Tests of lifecycle.go: the order of a stopping bufferevent's last acts.

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
