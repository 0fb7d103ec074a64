package actor

import (
	"testing"
)

// Tests of chunk.go: size classes, commit, release and owned chunks.

func TestNewChunkSizeClass(t *testing.T) {
	tests := []struct {
		hint, want int
	}{
		{-5, 512}, {0, 512}, {1, 512}, {512, 512}, {513, 4096}, {4096, 4096},
		{4097, 16384}, {16384, 16384}, {16385, 65536}, {65536, 65536}, {1 << 20, 65536},
	}
	for _, tc := range tests {
		c := newChunk(tc.hint)
		if len(c.buf) != tc.want || cap(c.buf) != tc.want || chunkSizes[c.class] != tc.want {
			t.Errorf("newChunk(%d) has len %d cap %d class %d, want size %d", tc.hint, len(c.buf), cap(c.buf), c.class, tc.want)
		}
		if c.len() != 0 || len(c.free()) != tc.want || !c.writable() || c.inPool {
			t.Errorf("newChunk(%d) = len %d free %d writable %v inPool %v, want an empty writable chunk",
				tc.hint, c.len(), len(c.free()), c.writable(), c.inPool)
		}
		c.release()
	}
}

func TestChunkCommit(t *testing.T) {
	c := newChunk(512)
	defer c.release()
	copy(c.free(), "hello")
	c.commit(5)
	if got := string(c.bytes()); got != "hello" {
		t.Errorf("after commit(5), bytes = %q, want %q", got, "hello")
	}
	if got := len(c.free()); got != 512-5 {
		t.Errorf("after commit(5), len(free()) = %d, want %d", got, 512-5)
	}
	for _, n := range []int{-1, 512} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("commit(%d) did not panic, want a panic on a broken invariant", n)
				}
			}()
			c.commit(n)
		}()
	}
}

func TestChunkReleaseReuse(t *testing.T) {
	c := newChunk(100)
	c.commit(7)
	c.off = 3
	c.release()
	if !c.inPool || c.off != 0 || c.end != 0 {
		t.Errorf("released chunk has inPool %v off %d end %d, want true 0 0", c.inPool, c.off, c.end)
	}
	// sync.Pool may drop items (always under the race detector, sometimes
	// on GC), so look for reuse over many tries rather than once.
	reused := false
	for range 100 {
		x := newChunk(100)
		x.release()
		y := newChunk(100)
		if y.len() != 0 || len(y.free()) != 512 {
			t.Fatalf("reused chunk has len %d free %d, want 0 512", y.len(), len(y.free()))
		}
		y.release()
		if x == y {
			reused = true
			break
		}
	}
	if !reused {
		t.Errorf("newChunk never returned a released chunk in 100 tries")
	}
}

func TestChunkDoubleReleasePanics(t *testing.T) {
	c := newChunk(1)
	c.release()
	defer func() {
		if recover() == nil {
			t.Errorf("second release did not panic")
		}
	}()
	c.release()
}

func TestOwnedChunk(t *testing.T) {
	backing := []byte("abcdef")
	c := ownedChunk(backing[:3])
	if c.free() != nil || c.writable() || cap(c.buf) != 3 {
		t.Errorf("owned chunk has free %q writable %v cap %d, want nil false 3", c.free(), c.writable(), cap(c.buf))
	}
	c.release()
	if c.inPool {
		t.Errorf("owned chunk went into a pool, want it left to the garbage collector")
	}
}
