package actor

import (
	"testing"
)

// Internal tests of sink.go: what one byte write hands over (viewSink).

// A byte write hands over everything queued, up to the per-write maximum
// and as many views as one writev takes: more views would be cut by the
// socket's writev, and what it left out would pass for a full kernel
// buffer, sending the rest through the writer loop.
func TestWriteBatch(t *testing.T) {
	var s viewSink
	var src Buffer
	for range 3 * maxWriteSlices {
		if err := src.AppendOwned(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ max, views, bytes int }{
		{DefaultMaxWrite, maxWriteSlices, maxWriteSlices * 100},
		{1000, 10, 1000},
		{1050, 11, 1050},
	} {
		n, moved := s.take(&src, tc.max)
		if len(s.views) != tc.views || n != tc.bytes || bufsLen(s.views) != n || moved != 0 {
			t.Errorf("max %d: batch of %d views, %d bytes (%d counted, %d moved), want %d, %d, none moved", tc.max, len(s.views), bufsLen(s.views), n, moved, tc.views, tc.bytes)
		}
		s.release()
	}
	if DefaultMaxWrite/maxWriteSlices > minSysReadChunk {
		t.Errorf("%d views cannot hold a whole %d-byte write of %d-byte chunks", maxWriteSlices, DefaultMaxWrite, minSysReadChunk)
	}
}
