package pipeline_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"testing"

	"github.com/bevgo/bev/pipeline"
)

// stdDecompress decompresses with the standard library, failing the test
// on an error.
func stdDecompress(t testing.TB, f pipeline.Format, p []byte) []byte {
	t.Helper()
	out, err := stdDecompressErr(f, p)
	if err != nil {
		t.Fatalf("standard %v reader: %v", f, err)
	}
	return out
}

func stdDecompressErr(f pipeline.Format, p []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch f {
	case pipeline.FormatFlate:
		r = flate.NewReader(bytes.NewReader(p))
	case pipeline.FormatZlib:
		r, err = zlib.NewReader(bytes.NewReader(p))
	case pipeline.FormatGzip:
		r, err = gzip.NewReader(bytes.NewReader(p))
	}
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
