package actor

import "testing"

// Tests of settings.go's enabled word: the directions and the counts of
// the calls that enabled each, which a timeout consults.

// enable sets the directions and counts the call for each direction
// alone: a count wraps within its own bits, never into the other's or
// into the directions.
func TestEnabledWord(t *testing.T) {
	var b Bufferevent
	count := func(d Dir) uint32 { return b.enabled.Load() >> enabledCountShift(d) & enabledCountMask }
	b.enable(Read)
	if b.enabledDirs() != Read || count(Read) != 1 || count(Write) != 0 {
		t.Fatalf("after enable(Read): dirs %v, counts %d, %d; want Read, 1, 0", b.enabledDirs(), count(Read), count(Write))
	}
	b.enable(Read | Write)
	if b.enabledDirs() != Read|Write || count(Read) != 2 || count(Write) != 1 {
		t.Fatalf("after enable(Read|Write): dirs %v, counts %d, %d; want Read|Write, 2, 1", b.enabledDirs(), count(Read), count(Write))
	}
	for range enabledCountMask - 1 {
		b.enable(Read)
	}
	if b.enabledDirs() != Read|Write || count(Read) != 0 || count(Write) != 1 {
		t.Fatalf("after %d enable(Read): dirs %v, counts %d, %d; want the read count wrapped to 0 alone", enabledCountMask+1, b.enabledDirs(), count(Read), count(Write))
	}
}

// clearUnlessEnabledSince clears a direction when no call enabled it
// since the snapshot, and leaves it when one did; the other direction is
// never touched.
func TestClearUnlessEnabledSince(t *testing.T) {
	var b Bufferevent
	b.enable(Read | Write)
	snap := b.enabled.Load()
	b.enable(Write) // after the snapshot, but not Read
	b.clearUnlessEnabledSince(Read, snap)
	if b.enabledDirs() != Write {
		t.Fatalf("dirs %v, want Read cleared (no Enable(Read) since), Write kept", b.enabledDirs())
	}
	b.clearUnlessEnabledSince(Write, snap)
	if b.enabledDirs() != Write {
		t.Fatalf("dirs %v, want Write kept: enabled since the snapshot", b.enabledDirs())
	}
	b.clearUnlessEnabledSince(Write, b.enabled.Load())
	if b.enabledDirs() != 0 {
		t.Fatalf("dirs %v, want Write cleared with a current snapshot", b.enabledDirs())
	}
}
