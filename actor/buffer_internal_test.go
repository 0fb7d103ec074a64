package actor

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"unsafe"
)

// chunkShape describes one chunk of a chain: its capacity and length.
type chunkShape struct{ cap, len int }

func shapes(b *Buffer) []chunkShape {
	var s []chunkShape
	for _, c := range b.chain() {
		s = append(s, chunkShape{len(c.buf), c.len()})
	}
	return s
}

func peekAll(b *Buffer) string {
	p := make([]byte, b.Len())
	return string(p[:b.Peek(p)])
}

// owned builds a Buffer with one read-only chunk per piece.
func owned(t testing.TB, pieces ...string) *Buffer {
	t.Helper()
	b := new(Buffer)
	for _, p := range pieces {
		if err := b.AppendOwned([]byte(p)); err != nil {
			t.Fatalf("AppendOwned(%q) = %v, want nil", p, err)
		}
	}
	return b
}

func TestBufferWriteChunkSizing(t *testing.T) {
	tests := []struct {
		name   string
		writes []int
		want   []chunkShape
	}{
		{"small writes share a chunk", []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []chunkShape{{512, 10}}},
		{"tail filled before a new chunk", []int{500, 100}, []chunkShape{{512, 512}, {512, 88}}},
		{"exact fit then one", []int{512, 1}, []chunkShape{{512, 512}, {512, 1}}},
		{"smallest class that fits", []int{600}, []chunkShape{{4096, 600}}},
		{"split at 64 KiB", []int{200 << 10}, []chunkShape{{65536, 65536}, {65536, 65536}, {65536, 65536}, {16384, 8192}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Buffer
			defer b.release()
			for _, n := range tc.writes {
				if _, err := b.Write(make([]byte, n)); err != nil {
					t.Fatalf("Write(%d bytes) = %v, want nil", n, err)
				}
			}
			if got := shapes(&b); !slices.Equal(got, tc.want) {
				t.Errorf("chunks = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBufferDrainReleasesEmptyChunks(t *testing.T) {
	var b Buffer
	for _, n := range []int{512, 100} {
		if _, err := b.Write(make([]byte, n)); err != nil {
			t.Fatalf("Write(%d bytes) = %v, want nil", n, err)
		}
	}
	first, second := b.chain()[0], b.chain()[1]
	if err := b.Drain(511); err != nil {
		t.Fatalf("Drain(511) = %v, want nil", err)
	}
	if first.inPool || len(b.chain()) != 2 {
		t.Errorf("after a partial drain, first chunk inPool %v and %d chunks, want false and 2", first.inPool, len(b.chain()))
	}
	if err := b.Drain(1); err != nil {
		t.Fatalf("Drain(1) = %v, want nil", err)
	}
	if !first.inPool || len(b.chain()) != 1 {
		t.Errorf("after draining the first chunk, inPool %v and %d chunks, want true and 1", first.inPool, len(b.chain()))
	}
	if _, err := b.Read(make([]byte, 100)); err != nil {
		t.Fatalf("Read(100) = %v, want nil", err)
	}
	if !second.inPool || len(b.chunks) != 0 || b.head != 0 {
		t.Errorf("after draining all, inPool %v, %d slots, head %d, want true 0 0", second.inPool, len(b.chunks), b.head)
	}
}

func TestBufferPushChunk(t *testing.T) {
	var b Buffer
	b.setFrozen(true, true)
	empty := newChunk(10)
	b.pushChunk(empty)
	if !empty.inPool || b.Len() != 0 {
		t.Errorf("pushChunk(empty): inPool %v, Len %d, want true 0", empty.inPool, b.Len())
	}
	c := newChunk(10)
	c.commit(copy(c.free(), "abc"))
	b.pushChunk(c)
	if b.Len() != 3 || peekAll(&b) != "abc" {
		t.Errorf("after pushChunk(abc) on a frozen buffer, contents = %q, want %q", peekAll(&b), "abc")
	}
	b.setFrozen(false, false)
	if _, err := b.WriteString("de"); err != nil {
		t.Fatalf("WriteString() = %v, want nil", err)
	}
	if got := shapes(&b); !slices.Equal(got, []chunkShape{{512, 5}}) {
		t.Errorf("after a small write, chunks = %v, want the pushed chunk's tail filled", got)
	}
	b.release()
	if !c.inPool {
		t.Errorf("release did not return the pushed chunk to its pool")
	}
}

func TestBufferSlices(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		limit  int
		want   []string
	}{
		{"empty", nil, 10, nil},
		{"zero limit", []string{"ab"}, 0, nil},
		{"negative limit", []string{"ab"}, -1, nil},
		{"all", []string{"ab", "cde", "f"}, 100, []string{"ab", "cde", "f"}},
		{"exact", []string{"ab", "cde", "f"}, 6, []string{"ab", "cde", "f"}},
		{"cut inside a chunk", []string{"ab", "cde", "f"}, 3, []string{"ab", "c"}},
		{"cut at a boundary", []string{"ab", "cde", "f"}, 5, []string{"ab", "cde"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := owned(t, tc.pieces...)
			before := peekAll(b)
			dst := make([][]byte, 1, 8)
			got := b.slices(dst, tc.limit)
			if len(got) != 1+len(tc.want) {
				t.Fatalf("slices(%d) returned %d views, want %d", tc.limit, len(got)-1, len(tc.want))
			}
			for i, w := range tc.want {
				if string(got[1+i]) != w || cap(got[1+i]) != len(w) {
					t.Errorf("view %d = %q cap %d, want %q with clipped cap", i, got[1+i], cap(got[1+i]), w)
				}
			}
			if after := peekAll(b); after != before || b.Len() != len(before) {
				t.Errorf("slices drained the buffer: contents %q, want %q", after, before)
			}
		})
	}
}

func TestBufferPopChunk(t *testing.T) {
	p := []byte("first")
	var b Buffer
	if err := b.AppendOwned(p); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	if _, err := b.WriteString("second"); err != nil {
		t.Fatalf("WriteString() = %v, want nil", err)
	}
	b.setFrozen(true, true)
	got := b.popChunk()
	if unsafe.SliceData(got) != unsafe.SliceData(p) || string(got) != "first" {
		t.Errorf("popChunk() = %q, want the appended memory %q", got, p)
	}
	pooled := b.chain()[0]
	got = b.popChunk()
	if string(got) != "second" || pooled.inPool {
		t.Errorf("popChunk() = %q with chunk inPool %v, want %q and the chunk kept out of the pool", got, pooled.inPool, "second")
	}
	if got := b.popChunk(); got != nil || b.Len() != 0 {
		t.Errorf("popChunk() on empty = %q, Len %d, want nil 0", got, b.Len())
	}
}

// frozenOp is a guarded public method, run on buffer b (and on other as
// the second buffer where the method takes one).
type frozenOp struct {
	name  string
	front bool // guarded by front freezing, else by end freezing
	run   func(b, other *Buffer) error
}

var frozenOps = []frozenOp{
	{"Read", true, func(b, _ *Buffer) error { _, err := b.Read(make([]byte, 2)); return err }},
	{"Read empty p", true, func(b, _ *Buffer) error { _, err := b.Read(nil); return err }},
	{"Drain", true, func(b, _ *Buffer) error { return b.Drain(2) }},
	{"ReadLine", true, func(b, _ *Buffer) error { _, err := b.ReadLine(EOLLF); return err }},
	{"WriteTo", true, func(b, _ *Buffer) error { _, err := b.WriteTo(io.Discard); return err }},
	{"Reset", true, func(b, _ *Buffer) error { return b.Reset() }},
	{"MoveFrom as source", true, func(b, other *Buffer) error { return other.MoveFrom(b) }},
	{"Write", false, func(b, _ *Buffer) error { _, err := b.Write([]byte("x")); return err }},
	{"WriteString", false, func(b, _ *Buffer) error { _, err := b.WriteString("x"); return err }},
	{"AppendOwned", false, func(b, _ *Buffer) error { return b.AppendOwned([]byte("x")) }},
	{"AppendOwned empty", false, func(b, _ *Buffer) error { return b.AppendOwned(nil) }},
	{"ReadFrom", false, func(b, _ *Buffer) error { _, err := b.ReadFrom(bytes.NewReader([]byte("x"))); return err }},
	{"MoveFrom as destination", false, func(b, other *Buffer) error { return b.MoveFrom(other) }},
	{"MoveFromN as source", true, func(b, other *Buffer) error { _, err := other.MoveFromN(b, 1); return err }},
	{"MoveFromN as destination", false, func(b, other *Buffer) error { _, err := b.MoveFromN(other, 1); return err }},
}

func TestBufferFreezing(t *testing.T) {
	for _, op := range frozenOps {
		t.Run(op.name, func(t *testing.T) {
			b, other := owned(t, "ab\n", "cd"), owned(t, "xy")
			b.setFrozen(op.front, !op.front)
			if err := op.run(b, other); !errors.Is(err, ErrFrozen) {
				t.Errorf("%s on a frozen buffer = %v, want ErrFrozen", op.name, err)
			}
			if got := peekAll(b); got != "ab\ncd" || b.Len() != 5 {
				t.Errorf("%s on a frozen buffer left %q, want %q", op.name, got, "ab\ncd")
			}
			if got := peekAll(other); got != "xy" {
				t.Errorf("%s on a frozen buffer left the other buffer %q, want %q", op.name, got, "xy")
			}

			// Freezing the other end does not get in the way.
			b.setFrozen(!op.front, op.front)
			if err := op.run(b, other); errors.Is(err, ErrFrozen) {
				t.Errorf("%s with only the other end frozen = %v, want no ErrFrozen", op.name, err)
			}
		})
	}
}

func TestBufferFrozenReadsAllowed(t *testing.T) {
	b := owned(t, "ab", "cd")
	b.setFrozen(true, true)
	if b.Len() != 4 || peekAll(b) != "abcd" {
		t.Errorf("Peek on a frozen buffer = %q, want %q", peekAll(b), "abcd")
	}
	if got := b.Index([]byte("bc")); got != 1 {
		t.Errorf("Index(bc) on a frozen buffer = %d, want 1", got)
	}
	if got := b.Pullup(-1); string(got) != "abcd" {
		t.Errorf("Pullup(-1) on a frozen buffer = %q, want %q", got, "abcd")
	}
	b.drain(1)
	if got := peekAll(b); got != "bcd" {
		t.Errorf("internal drain on a frozen buffer left %q, want %q", got, "bcd")
	}
	b.release()
	if b.Len() != 0 || b.chunks != nil {
		t.Errorf("release on a frozen buffer left Len %d, want 0 and no chain", b.Len())
	}
}

func TestBufferPullupKeepsWriterMemory(t *testing.T) {
	for _, frozen := range []bool{true, false} {
		var b Buffer
		if _, err := b.Write(bytes.Repeat([]byte("a"), 512)); err != nil {
			t.Fatalf("Write() = %v, want nil", err)
		}
		if _, err := b.WriteString("bcd"); err != nil {
			t.Fatalf("WriteString() = %v, want nil", err)
		}
		old := append([]*chunk(nil), b.chain()...)
		views := b.slices(nil, b.Len())
		b.setFrozen(frozen, false)
		got := b.Pullup(514)
		if string(got) != string(bytes.Repeat([]byte("a"), 512))+"bc" {
			t.Fatalf("Pullup(514) returned the wrong bytes")
		}
		for _, v := range views {
			if unsafe.SliceData(v) == unsafe.SliceData(got) {
				t.Errorf("frozen=%v: Pullup result aliases a writer view, want a new chunk", frozen)
			}
		}
		if string(views[0]) != string(bytes.Repeat([]byte("a"), 512)) || string(views[1]) != "bcd" {
			t.Errorf("frozen=%v: writer views changed after Pullup", frozen)
		}
		// With the front frozen the old chunk must stay out of the pool, or
		// another Buffer could overwrite it under the writer.
		if old[0].inPool == frozen {
			t.Errorf("frozen=%v: replaced chunk inPool = %v, want %v", frozen, old[0].inPool, !frozen)
		}
		if got := peekAll(&b); got != string(views[0])+"bcd" {
			t.Errorf("frozen=%v: contents changed by Pullup", frozen)
		}
		b.release()
	}
}

func TestBufferChainStaysBounded(t *testing.T) {
	var b Buffer
	defer b.release()
	// A steady backlog of about 10 chunks while pushing and popping.
	for i := range 10000 {
		if err := b.AppendOwned([]byte{byte(i)}); err != nil {
			t.Fatalf("AppendOwned() = %v, want nil", err)
		}
		if i >= 10 {
			b.drain(1)
		}
	}
	if b.Len() != 10 || cap(b.chunks) > 64 {
		t.Errorf("after 10000 pushes with a backlog of 10: Len %d, cap %d, want 10 and cap <= 64", b.Len(), cap(b.chunks))
	}
	for i, c := range b.chunks[:b.head] {
		if c != nil {
			t.Errorf("popped slot %d still points at a chunk", i)
		}
	}
}

func TestBufferAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	data := make([]byte, 4096)
	var a, b Buffer
	defer a.release()
	defer b.release()
	tests := []struct {
		name string
		run  func()
	}{
		{"Write+Drain 4KiB", func() {
			a.Write(data)
			a.Drain(len(data))
		}},
		{"MoveFrom into empty and back", func() {
			a.Write(data)
			b.MoveFrom(&a)
			a.MoveFrom(&b)
			a.Drain(a.Len())
		}},
		{"MoveFrom appending", func() {
			a.Write(data)
			b.Write(data)
			b.MoveFrom(&a)
			b.Drain(b.Len())
		}},
		{"WriteString+Read", func() {
			a.WriteString("hello, world")
			a.Read(data[:12])
		}},
		{"ReadLine incomplete", func() {
			a.WriteString("no end")
			a.ReadLine(EOLCRLF)
			a.Drain(a.Len())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tc.run); got != 0 {
				t.Errorf("%s allocates %v times per run, want 0", tc.name, got)
			}
		})
	}
}

func TestBufferSlicesAllocs(t *testing.T) {
	var b Buffer
	defer b.release()
	if _, err := b.Write(make([]byte, 3*maxChunkSize)); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	views := make([][]byte, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		views = b.slices(views[:0], b.Len())
	})
	if allocs != 0 || len(views) != 3 {
		t.Errorf("slices with capacity allocates %v times and gave %d views, want 0 and 3", allocs, len(views))
	}
}
