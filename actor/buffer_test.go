package actor_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unsafe"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// build returns a Buffer holding pieces, one chunk per piece, so tests
// control exactly where chunk boundaries fall.
func build(t testing.TB, pieces ...string) *actor.Buffer {
	t.Helper()
	b := new(actor.Buffer)
	for _, p := range pieces {
		if err := b.AppendOwned([]byte(p)); err != nil {
			t.Fatalf("AppendOwned(%q) = %v, want nil", p, err)
		}
	}
	return b
}

// contents returns a copy of every byte in b without removing any.
func contents(b *actor.Buffer) string {
	p := make([]byte, b.Len())
	n := b.Peek(p)
	return string(p[:n])
}

func TestBufferZeroValue(t *testing.T) {
	var b actor.Buffer
	if got := b.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
	if n, err := b.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Errorf("Read(4) = %d, %v, want 0, io.EOF", n, err)
	}
	if got := b.Peek(make([]byte, 4)); got != 0 {
		t.Errorf("Peek(4) = %d, want 0", got)
	}
	if got := b.Pullup(-1); got != nil {
		t.Errorf("Pullup(-1) = %q, want nil", got)
	}
	if got := b.Index([]byte("x")); got != -1 {
		t.Errorf("Index(x) = %d, want -1", got)
	}
	if line, err := b.ReadLine(actor.EOLLF); line != nil || !errors.Is(err, actor.ErrNoLine) {
		t.Errorf("ReadLine(EOLLF) = %q, %v, want nil, ErrNoLine", line, err)
	}
	if err := b.Drain(10); err != nil {
		t.Errorf("Drain(10) = %v, want nil", err)
	}
	var w bytes.Buffer
	if n, err := b.WriteTo(&w); n != 0 || err != nil {
		t.Errorf("WriteTo() = %d, %v, want 0, nil", n, err)
	}
	if err := b.Reset(); err != nil {
		t.Errorf("Reset() = %v, want nil", err)
	}
}

func TestBufferWrite(t *testing.T) {
	big := string(testkit.Pattern(200 << 10))
	tests := []struct {
		name   string
		writes []string
	}{
		{"none", nil},
		{"empty", []string{""}},
		{"one", []string{"hello"}},
		{"many small", strings.Split(strings.Repeat("ab,", 300), ",")},
		{"fills a chunk exactly", []string{strings.Repeat("x", 512), "y"}},
		{"spans chunks", []string{big[:1000], big[1000:70000], big[70000:]}},
		{"bigger than a chunk", []string{big}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b actor.Buffer
			var want strings.Builder
			for _, w := range tc.writes {
				n, err := b.Write([]byte(w))
				if n != len(w) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v, want %d, nil", len(w), n, err, len(w))
				}
				want.WriteString(w)
			}
			if got := b.Len(); got != want.Len() {
				t.Errorf("Len() = %d, want %d", got, want.Len())
			}
			if got := contents(&b); got != want.String() {
				t.Errorf("contents differ from the writes (len %d vs %d)", len(got), want.Len())
			}
		})
	}
}

func TestBufferWriteNeverKeepsInput(t *testing.T) {
	var b actor.Buffer
	p := []byte("abc")
	if _, err := b.Write(p); err != nil {
		t.Fatalf("Write(abc) = %v, want nil", err)
	}
	p[0] = 'X'
	if got := contents(&b); got != "abc" {
		t.Errorf("after changing p, contents = %q, want %q", got, "abc")
	}
}

func TestBufferWriteString(t *testing.T) {
	var b actor.Buffer
	big := string(testkit.Pattern(70 << 10))
	for _, s := range []string{"", "a", "bc", big} {
		n, err := b.WriteString(s)
		if n != len(s) || err != nil {
			t.Fatalf("WriteString(%d bytes) = %d, %v, want %d, nil", len(s), n, err, len(s))
		}
	}
	if got, want := contents(&b), "abc"+big; got != want {
		t.Errorf("contents have len %d, want %d and the written bytes", len(got), len(want))
	}
}

func TestBufferAppendOwned(t *testing.T) {
	p := []byte("owned bytes")
	var b actor.Buffer
	if err := b.AppendOwned(p); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	got := b.Pullup(-1)
	if unsafe.SliceData(got) != unsafe.SliceData(p) {
		t.Errorf("Pullup(-1) after AppendOwned is a copy, want the appended memory")
	}
	for _, p := range [][]byte{nil, {}} {
		if err := b.AppendOwned(p); err != nil {
			t.Errorf("AppendOwned(%v) = %v, want nil", p, err)
		}
	}
	if got := b.Len(); got != len(p) {
		t.Errorf("Len() = %d after empty appends, want %d", got, len(p))
	}
}

func TestBufferAppendOwnedNeverWritesSpareCapacity(t *testing.T) {
	backing := []byte("abcXYZ")
	var b actor.Buffer
	if err := b.AppendOwned(backing[:3]); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	if _, err := b.WriteString("123"); err != nil {
		t.Fatalf("WriteString() = %v, want nil", err)
	}
	if got := string(backing); got != "abcXYZ" {
		t.Errorf("backing array = %q, want %q untouched", got, "abcXYZ")
	}
	if got := contents(&b); got != "abc123" {
		t.Errorf("contents = %q, want %q", got, "abc123")
	}
}

func TestBufferRead(t *testing.T) {
	tests := []struct {
		name    string
		pieces  []string
		size    int
		want    string
		wantErr error
		rest    string
	}{
		{"empty buffer", nil, 3, "", io.EOF, ""},
		{"empty p on empty buffer", nil, 0, "", nil, ""},
		{"empty p", []string{"ab"}, 0, "", nil, "ab"},
		{"part of a chunk", []string{"abcdef"}, 2, "ab", nil, "cdef"},
		{"exact chunk", []string{"abc", "def"}, 3, "abc", nil, "def"},
		{"across chunks", []string{"ab", "cd", "ef"}, 5, "abcde", nil, "f"},
		{"more than buffered", []string{"ab", "c"}, 10, "abc", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			p := make([]byte, tc.size)
			n, err := b.Read(p)
			if string(p[:n]) != tc.want || err != tc.wantErr {
				t.Errorf("Read(%d) = %q, %v, want %q, %v", tc.size, p[:n], err, tc.want, tc.wantErr)
			}
			if got := contents(b); got != tc.rest {
				t.Errorf("after Read, contents = %q, want %q", got, tc.rest)
			}
		})
	}
}

func TestBufferDrain(t *testing.T) {
	tests := []struct {
		name    string
		pieces  []string
		n       int
		wantErr error
		rest    string
	}{
		{"zero", []string{"ab"}, 0, nil, "ab"},
		{"negative", []string{"ab"}, -1, actor.ErrInvalid, "ab"},
		{"part", []string{"abc", "de"}, 2, nil, "cde"},
		{"whole chunk", []string{"abc", "de"}, 3, nil, "de"},
		{"across chunks", []string{"ab", "cd", "ef"}, 5, nil, "f"},
		{"everything", []string{"ab", "cd"}, 4, nil, ""},
		{"more than buffered", []string{"ab", "cd"}, 100, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			if err := b.Drain(tc.n); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("Drain(%d) = %v, want %v", tc.n, err, tc.wantErr)
			}
			if got := contents(b); got != tc.rest {
				t.Errorf("after Drain(%d), contents = %q, want %q", tc.n, got, tc.rest)
			}
			if got := b.Len(); got != len(tc.rest) {
				t.Errorf("after Drain(%d), Len() = %d, want %d", tc.n, got, len(tc.rest))
			}
		})
	}
}

func TestBufferPeek(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		size   int
		want   string
	}{
		{"empty p", []string{"ab"}, 0, ""},
		{"prefix", []string{"abc", "def"}, 2, "ab"},
		{"across chunks", []string{"ab", "cd", "ef"}, 5, "abcde"},
		{"more than buffered", []string{"ab", "c"}, 10, "abc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			before := b.Len()
			p := make([]byte, tc.size)
			n := b.Peek(p)
			if got := string(p[:n]); got != tc.want {
				t.Errorf("Peek(%d) = %q, want %q", tc.size, got, tc.want)
			}
			if b.Len() != before {
				t.Errorf("Peek changed Len() from %d to %d", before, b.Len())
			}
		})
	}
}

func TestBufferPullup(t *testing.T) {
	big := string(testkit.Pattern(100 << 10))
	tests := []struct {
		name   string
		pieces []string
		n      int
		want   string
	}{
		{"empty buffer", nil, -1, ""},
		{"zero", []string{"abc"}, 0, ""},
		{"within first chunk", []string{"abc", "def"}, 2, "ab"},
		{"first chunk exactly", []string{"abc", "def"}, 3, "abc"},
		{"across chunks", []string{"ab", "cd", "ef"}, 5, "abcde"},
		{"negative means all", []string{"ab", "cd", "ef"}, -1, "abcdef"},
		{"too large means all", []string{"ab", "cd"}, 99, "abcd"},
		{"bigger than a pooled chunk", []string{big[:1], big[1:50000], big[50000:]}, -1, big},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			before := contents(b)
			got := b.Pullup(tc.n)
			if string(got) != tc.want {
				t.Errorf("Pullup(%d) = %d bytes, want %q (%d bytes)", tc.n, len(got), tc.want[:min(len(tc.want), 16)], len(tc.want))
			}
			if len(got) != cap(got) {
				t.Errorf("Pullup(%d) has cap %d, want it clipped to len %d", tc.n, cap(got), len(got))
			}
			if after := contents(b); after != before {
				t.Errorf("Pullup(%d) changed the contents", tc.n)
			}
			if tc.want == "" && got != nil {
				t.Errorf("Pullup(%d) = %q, want nil", tc.n, got)
			}
			// Pulled-up bytes stay contiguous for the next call.
			if again := b.Pullup(tc.n); len(got) > 0 && unsafe.SliceData(again) != unsafe.SliceData(got) {
				t.Errorf("second Pullup(%d) copied again, want the same memory", tc.n)
			}
		})
	}
}

func TestBufferIndex(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		sep    string
		want   int
	}{
		{"empty sep", []string{"abc"}, "", 0},
		{"empty buffer", nil, "a", -1},
		{"not found", []string{"abc", "def"}, "x", -1},
		{"sep longer than buffer", []string{"ab"}, "abc", -1},
		{"in first chunk", []string{"abcabc", "def"}, "bc", 1},
		{"in later chunk", []string{"abc", "defg"}, "ef", 4},
		{"across boundary", []string{"abc", "def"}, "cd", 2},
		{"across three chunks", []string{"ab", "c", "de"}, "bcd", 1},
		{"false start then match", []string{"aab", "aabx"}, "abx", 4},
		{"false start across boundary", []string{"xa", "ba", "bx"}, "abx", 3},
		{"partial at end", []string{"abc", "de"}, "def", -1},
		{"earliest wins over later in-chunk", []string{"xa", "bxab"}, "ab", 1},
		{"crlf split", []string{"line\r", "\nrest"}, "\r\n", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			if got := b.Index([]byte(tc.sep)); got != tc.want {
				t.Errorf("Index(%q) = %d, want %d", tc.sep, got, tc.want)
			}
			if got, want := strings.Index(contents(b), tc.sep), tc.want; got != want {
				t.Errorf("test table disagrees with strings.Index: %d vs %d", got, want)
			}
		})
	}
}

func TestBufferMoveFrom(t *testing.T) {
	tests := []struct {
		name string
		dst  []string
		src  []string
	}{
		{"both empty", nil, nil},
		{"into empty", nil, []string{"ab", "cd"}},
		{"from empty", []string{"ab"}, nil},
		{"append", []string{"ab", "cd"}, []string{"ef", "gh", "ij"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst, src := build(t, tc.dst...), build(t, tc.src...)
			want := contents(dst) + contents(src)
			if err := dst.MoveFrom(src); err != nil {
				t.Fatalf("MoveFrom() = %v, want nil", err)
			}
			if got := contents(dst); got != want {
				t.Errorf("dst contents = %q, want %q", got, want)
			}
			if dst.Len() != len(want) {
				t.Errorf("dst Len() = %d, want %d", dst.Len(), len(want))
			}
			if src.Len() != 0 || contents(src) != "" {
				t.Errorf("src Len() = %d, want 0", src.Len())
			}
			// Both stay usable: src refills, dst keeps appending after the
			// moved chunks.
			if _, err := src.WriteString("S"); err != nil {
				t.Fatalf("src.WriteString() = %v, want nil", err)
			}
			if _, err := dst.WriteString("D"); err != nil {
				t.Fatalf("dst.WriteString() = %v, want nil", err)
			}
			if got := contents(dst); got != want+"D" {
				t.Errorf("dst after write = %q, want %q", got, want+"D")
			}
			if got := contents(src); got != "S" {
				t.Errorf("src after write = %q, want %q", got, "S")
			}
		})
	}
}

func TestBufferMoveFromDoesNotCopy(t *testing.T) {
	p := []byte("moved without copying")
	src, dst := new(actor.Buffer), new(actor.Buffer)
	if err := src.AppendOwned(p); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	if err := dst.MoveFrom(src); err != nil {
		t.Fatalf("MoveFrom() = %v, want nil", err)
	}
	if got := dst.Pullup(-1); unsafe.SliceData(got) != unsafe.SliceData(p) {
		t.Errorf("after MoveFrom, Pullup(-1) is a copy, want the original memory")
	}
}

func TestBufferMoveFromInvalid(t *testing.T) {
	b := build(t, "abc")
	for _, tc := range []struct {
		name string
		src  *actor.Buffer
	}{{"nil", nil}, {"self", b}} {
		t.Run(tc.name, func(t *testing.T) {
			if err := b.MoveFrom(tc.src); !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("MoveFrom(%s) = %v, want ErrInvalid", tc.name, err)
			}
			if got := contents(b); got != "abc" {
				t.Errorf("after MoveFrom(%s), contents = %q, want %q", tc.name, got, "abc")
			}
		})
	}
}

func TestBufferMoveFromN(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      []string
		n        int
		moved    string
		copiedAt int // index in moved where copied bytes start, -1 for none
	}{
		{"none", []string{"ab", "cd"}, 0, "", -1},
		{"whole chunks", []string{"ab", "cd", "ef"}, 4, "abcd", -1},
		{"split chunk", []string{"ab", "cd", "ef"}, 3, "abc", 2},
		{"inside the first", []string{"abcdef"}, 2, "ab", 0},
		{"all", []string{"ab", "cd"}, 4, "abcd", -1},
		{"more than all", []string{"ab", "cd"}, 100, "abcd", -1},
		{"empty source", nil, 5, "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := build(t, tc.src...)
			orig := contents(src)
			dst := build(t, "X")
			n, err := dst.MoveFromN(src, tc.n)
			if err != nil || n != len(tc.moved) {
				t.Fatalf("MoveFromN(%d) = %d, %v, want %d, nil", tc.n, n, err, len(tc.moved))
			}
			if got := contents(dst); got != "X"+tc.moved {
				t.Errorf("dst = %q, want %q", got, "X"+tc.moved)
			}
			if got, want := contents(src), orig[len(tc.moved):]; got != want {
				t.Errorf("src = %q, want %q", got, want)
			}
			if dst.Len() != 1+n || src.Len() != len(orig)-n {
				t.Errorf("Len() = %d and %d, want %d and %d", dst.Len(), src.Len(), 1+n, len(orig)-n)
			}
		})
	}
}

func TestBufferMoveFromNDoesNotCopyWholeChunks(t *testing.T) {
	p, q := []byte("first chunk"), []byte("second chunk")
	src := new(actor.Buffer)
	src.AppendOwned(p)
	src.AppendOwned(q)
	var dst actor.Buffer
	if n, err := dst.MoveFromN(src, len(p)+3); err != nil || n != len(p)+3 {
		t.Fatalf("MoveFromN() = %d, %v, want %d, nil", n, err, len(p)+3)
	}
	if got := dst.Pullup(len(p)); unsafe.SliceData(got) != unsafe.SliceData(p) {
		t.Errorf("the whole chunk moved by MoveFromN is a copy, want the original memory")
	}
	if got := src.Pullup(-1); unsafe.SliceData(got) != unsafe.SliceData(q[3:]) {
		t.Errorf("the rest of the split chunk is a copy, want the original memory")
	}
}

func TestBufferMoveFromNInvalid(t *testing.T) {
	b := build(t, "abc")
	for _, tc := range []struct {
		name string
		src  *actor.Buffer
		n    int
	}{{"nil", nil, 1}, {"self", b, 1}, {"negative", build(t, "x"), -1}} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := b.MoveFromN(tc.src, tc.n); n != 0 || !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("MoveFromN(%s) = %d, %v, want 0, ErrInvalid", tc.name, n, err)
			}
			if got := contents(b); got != "abc" {
				t.Errorf("after MoveFromN(%s), contents = %q, want %q", tc.name, got, "abc")
			}
		})
	}
}

func TestBufferReset(t *testing.T) {
	var b actor.Buffer
	if _, err := b.Write(testkit.Pattern(90 << 10)); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	if err := b.AppendOwned([]byte("x")); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	if err := b.Reset(); err != nil {
		t.Fatalf("Reset() = %v, want nil", err)
	}
	if b.Len() != 0 || contents(&b) != "" {
		t.Errorf("after Reset, Len() = %d, want 0", b.Len())
	}
	if _, err := b.WriteString("again"); err != nil {
		t.Fatalf("WriteString() = %v, want nil", err)
	}
	if got := contents(&b); got != "again" {
		t.Errorf("after Reset and WriteString, contents = %q, want %q", got, "again")
	}
}

func TestBufferLongQueue(t *testing.T) {
	// Keep a steady backlog while appending and draining, which makes the
	// chunk list wrap and compact many times.
	var b actor.Buffer
	var model bytes.Buffer
	data := testkit.Pattern(3000)
	for i := range 2000 {
		k := 1 + i%len(data)
		if err := b.AppendOwned(data[:k]); err != nil {
			t.Fatalf("AppendOwned() = %v, want nil", err)
		}
		model.Write(data[:k])
		if i%3 != 0 {
			d := k - 1 + i%5
			if err := b.Drain(d); err != nil {
				t.Fatalf("Drain(%d) = %v, want nil", d, err)
			}
			model.Next(d)
		}
		if b.Len() != model.Len() {
			t.Fatalf("step %d: Len() = %d, want %d", i, b.Len(), model.Len())
		}
	}
	if got := contents(&b); got != model.String() {
		t.Errorf("contents differ from the model after %d steps", 2000)
	}
}
