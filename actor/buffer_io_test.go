package actor_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// The io.WriterTo and io.ReaderFrom side of Buffer.

func TestBufferWriteTo(t *testing.T) {
	data := testkit.Pattern(150 << 10)
	var b actor.Buffer
	if _, err := b.Write(data); err != nil {
		t.Fatalf("Write() = %v, want nil", err)
	}
	if err := b.AppendOwned([]byte("tail")); err != nil {
		t.Fatalf("AppendOwned() = %v, want nil", err)
	}
	var w bytes.Buffer
	n, err := b.WriteTo(&w)
	if want := int64(len(data) + 4); n != want || err != nil {
		t.Errorf("WriteTo() = %d, %v, want %d, nil", n, err, want)
	}
	if !bytes.Equal(w.Bytes(), append(data, "tail"...)) {
		t.Errorf("WriteTo wrote %d bytes that differ from the buffered ones", w.Len())
	}
	if b.Len() != 0 {
		t.Errorf("after WriteTo, Len() = %d, want 0", b.Len())
	}
}

// limitedWriter accepts at most n bytes in total, then fails with err (or
// writes short without an error when err is nil).
type limitedWriter struct {
	w   bytes.Buffer
	n   int
	err error
}

func (lw *limitedWriter) Write(p []byte) (int, error) {
	if len(p) <= lw.n {
		lw.n -= len(p)
		return lw.w.Write(p)
	}
	k := lw.n
	lw.n = 0
	lw.w.Write(p[:k])
	return k, lw.err
}

func TestBufferWriteToPartial(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"writer error", errBoom, errBoom},
		{"short write", nil, io.ErrShortWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, "abc", "def", "ghi")
			lw := &limitedWriter{n: 5, err: tc.err}
			n, err := b.WriteTo(lw)
			if n != 5 || !errors.Is(err, tc.wantErr) {
				t.Errorf("WriteTo() = %d, %v, want 5, %v", n, err, tc.wantErr)
			}
			if got := contents(b); got != "fghi" {
				t.Errorf("after partial WriteTo, contents = %q, want %q (only written bytes drained)", got, "fghi")
			}
		})
	}
}

// badReader reports a count larger than the buffer it was given.
type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

func TestBufferReadFrom(t *testing.T) {
	data := testkit.Pattern(100 << 10)
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		prefix  string
		r       io.Reader
		want    []byte
		wantErr error
	}{
		{"empty", "", strings.NewReader(""), nil, nil},
		{"large", "", bytes.NewReader(data), data, nil},
		{"after existing bytes", "pre", bytes.NewReader(data), data, nil},
		{"one byte at a time", "", iotest.OneByteReader(bytes.NewReader(data[:3000])), data[:3000], nil},
		{"data with EOF", "", iotest.DataErrReader(bytes.NewReader(data[:700])), data[:700], nil},
		{"error after data", "", io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(errBoom)), data[:10], errBoom},
		{"impossible count", "", badReader{}, nil, actor.ErrInvalid},
		{"no progress", "", &zeroReader{}, nil, io.ErrNoProgress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.prefix)
			n, err := b.ReadFrom(tc.r)
			if n != int64(len(tc.want)) || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("ReadFrom() = %d, %v, want %d, %v", n, err, len(tc.want), tc.wantErr)
			}
			if got, want := contents(b), tc.prefix+string(tc.want); got != want {
				t.Errorf("after ReadFrom, contents have %d bytes, want the %d read", len(got), len(want))
			}
		})
	}
}

// A nil reader or writer is a bad argument: ReadFrom and WriteTo return
// an error wrapping ErrInvalid and leave the buffer as it was, instead of
// panicking (both used to dereference it).
func TestBufferIONilArguments(t *testing.T) {
	var b actor.Buffer
	b.WriteString("kept")
	if n, err := b.ReadFrom(nil); n != 0 || !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("ReadFrom(nil) = %d, %v, want 0, ErrInvalid", n, err)
	}
	if n, err := b.WriteTo(nil); n != 0 || !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("WriteTo(nil) = %d, %v, want 0, ErrInvalid", n, err)
	}
	if got := string(b.Pullup(-1)); got != "kept" {
		t.Errorf("buffer after the failed calls = %q, want \"kept\"", got)
	}
}
