package pipeline_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

func TestCompressRoundTrip(t *testing.T) {
	in := sample(100000)
	for _, f := range []pipeline.Format{pipeline.FormatFlate, pipeline.FormatZlib, pipeline.FormatGzip} {
		for _, level := range []int{-2, 0, 1, 6, 9} {
			for _, limit := range []int{-1, 100} {
				t.Run(fmt.Sprintf("%v/level%d/limit%d", f, level, limit), func(t *testing.T) {
					c, err := pipeline.Compress(f, level)
					if err != nil {
						t.Fatalf("Compress(%v, %d) = %v", f, level, err)
					}
					wire := mustDrive(t, c, in, 10000, limit)
					if got := stdDecompress(t, f, wire); !bytes.Equal(got, in) {
						t.Fatalf("the standard library decompressed %d bytes, want %d", len(got), len(in))
					}
					d, err := pipeline.Decompress(f)
					if err != nil {
						t.Fatalf("Decompress(%v) = %v", f, err)
					}
					if got := mustDrive(t, d, wire, 777, limit); !bytes.Equal(got, in) {
						t.Fatalf("decompressed %d bytes, want %d", len(got), len(in))
					}
				})
			}
		}
	}
}

func TestCompressArguments(t *testing.T) {
	if _, err := pipeline.Compress(pipeline.FormatGzip, 42); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Compress(gzip, 42) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.Compress(0, 1); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Compress(0, 1) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.Decompress(9); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("Decompress(9) = %v, want ErrInvalid", err)
	}
}

// A decompressor holds what a small input expands to and releases it as
// room appears, never more than the limit per call.
func TestDecompressBoundedByLimit(t *testing.T) {
	wire := mustDrive(t, pipeline.Gzip(), make([]byte, 4<<20), 1<<20, -1)
	d := pipeline.Gunzip()
	var src, dst actor.Buffer
	src.Write(wire)
	total, calls := 0, 0
	for {
		res, err := d.Process(&dst, &src, 1000, actor.Normal)
		if err != nil || res == pipeline.Failed {
			t.Fatalf("Process = %v, %v", res, err)
		}
		if dst.Len() > 1000 {
			t.Fatalf("Process(limit 1000) produced %d bytes", dst.Len())
		}
		if res != pipeline.OK {
			break
		}
		total += dst.Len()
		dst.Reset()
		calls++
	}
	if total != 4<<20 || buffered(d) != 0 {
		t.Errorf("decompressed %d bytes in %d calls with %d held, want %d", total, calls, buffered(d), 4<<20)
	}
	d.(io.Closer).Close()
}

func TestDecompressErrors(t *testing.T) {
	wire := mustDrive(t, pipeline.Zlib(), sample(10000), 10000, -1)
	corrupt := bytes.Clone(wire)
	corrupt[len(corrupt)/2] ^= 0xff
	tests := []struct {
		name string
		st   pipeline.Stage
		in   []byte
		want error
	}{
		{"corrupt", pipeline.Unzlib(), corrupt, pipeline.ErrCorrupt},
		{"truncated", pipeline.Unzlib(), wire[:len(wire)-10], pipeline.ErrTruncated},
		{"trailing", pipeline.Unzlib(), append(bytes.Clone(wire), 'x'), pipeline.ErrTrailingData},
		{"bad header", pipeline.Gunzip(), []byte("not gzip at all"), pipeline.ErrCorrupt},
		{"empty", pipeline.Gunzip(), nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drive(t, tc.st, tc.in, 1000, -1, true)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
	// A compressor refuses bytes after Finished.
	c := pipeline.Deflate()
	var src, dst actor.Buffer
	c.Process(&dst, &src, -1, actor.Finished)
	src.WriteString("late")
	if res, err := c.Process(&dst, &src, -1, actor.Normal); res != pipeline.Failed || !errors.Is(err, pipeline.ErrTrailingData) {
		t.Errorf("Process after Finished = %v, %v, want Failed with ErrTrailingData", res, err)
	}
}

// Flush emits everything so far: a peer can decode it all before the
// stream ends.
func TestCompressFlush(t *testing.T) {
	c := pipeline.Deflate()
	var src, dst actor.Buffer
	src.WriteString("hello, flush")
	c.Process(&dst, &src, -1, actor.Normal)
	c.Process(&dst, &src, -1, actor.Flush)
	if res, _ := c.Process(&dst, &src, -1, actor.Flush); res != pipeline.NeedMore {
		t.Errorf("a second Flush with nothing new = %v, want NeedMore (no empty sync blocks)", res)
	}
	d := pipeline.Inflate()
	defer d.(io.Closer).Close()
	var out actor.Buffer
	d.Process(&out, &dst, -1, actor.Normal)
	if got := out.Pullup(-1); string(got) != "hello, flush" {
		t.Errorf("decoded %q after Flush, want %q", got, "hello, flush")
	}
}
