package pipeline

import (
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/bevgo/bev/actor"
)

// Format is a compressed stream format.
type Format int

// The formats.
const (
	FormatFlate Format = iota + 1 // raw DEFLATE, RFC 1951 (compress/flate)
	FormatZlib                    // zlib, RFC 1950 (compress/zlib)
	FormatGzip                    // gzip, RFC 1952 (compress/gzip), multistream
)

// String returns "flate", "zlib", "gzip" or "Format(n)".
func (f Format) String() string {
	switch f {
	case FormatFlate:
		return "flate"
	case FormatZlib:
		return "zlib"
	case FormatGzip:
		return "gzip"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Compress returns a stage that compresses the stream in format f at the
// given level (flate.DefaultCompression, flate.NoCompression,
// flate.HuffmanOnly, or 1 to 9). Modes map as in libevent's zlib test:
// Normal compresses what arrives (the compressor may hold some of it),
// Flush emits everything so far with a sync flush, and Finished ends the
// stream (final block and trailer); bytes after Finished are an error
// wrapping ErrTrailingData. Output beyond the limit is held and reported
// through Buffered. It fails with an error wrapping ErrInvalid for an
// unknown format or level.
func Compress(f Format, level int) (Stage, error) {
	c := &compressor{format: f}
	var err error
	switch f {
	case FormatFlate:
		c.w, err = flate.NewWriter(&c.sink, level)
	case FormatZlib:
		c.w, err = zlib.NewWriterLevel(&c.sink, level)
	case FormatGzip:
		c.w, err = gzip.NewWriterLevel(&c.sink, level)
	default:
		return nil, fmt.Errorf("%w: compression format %v", ErrInvalid, f)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v level %d: %w", ErrInvalid, f, level, err)
	}
	return c, nil
}

// Decompress returns a stage that decompresses a stream in format f. It
// holds output beyond the limit (reporting it through Buffered) and
// consumes input only as it needs it, so the filter's read high watermark
// bounds what a small input can expand to. Malformed input fails with an
// error wrapping ErrCorrupt; a stream cut short at Finished (the
// underlying's EOF) with one wrapping ErrTruncated; bytes after the end of
// a flate or zlib stream with one wrapping ErrTrailingData (gzip reads
// further members). The stage must be closed (NewFilter does) to end a
// stream cut short. It fails with an error wrapping ErrInvalid for an
// unknown format.
func Decompress(f Format) (Stage, error) {
	switch f {
	case FormatFlate, FormatZlib, FormatGzip:
		return &decompressor{format: f}, nil
	}
	return nil, fmt.Errorf("%w: compression format %v", ErrInvalid, f)
}

// Deflate returns Compress(FormatFlate, flate.DefaultCompression).
func Deflate() Stage { return mustStage(Compress(FormatFlate, flate.DefaultCompression)) }

// Inflate returns Decompress(FormatFlate).
func Inflate() Stage { return mustStage(Decompress(FormatFlate)) }

// Zlib returns Compress(FormatZlib, flate.DefaultCompression).
func Zlib() Stage { return mustStage(Compress(FormatZlib, flate.DefaultCompression)) }

// Unzlib returns Decompress(FormatZlib).
func Unzlib() Stage { return mustStage(Decompress(FormatZlib)) }

// Gzip returns Compress(FormatGzip, flate.DefaultCompression).
func Gzip() Stage { return mustStage(Compress(FormatGzip, flate.DefaultCompression)) }

// Gunzip returns Decompress(FormatGzip).
func Gunzip() Stage { return mustStage(Decompress(FormatGzip)) }

// mustStage is for constructors whose arguments are constants known to be
// valid.
func mustStage(s Stage, err error) Stage {
	if err != nil {
		panic("pipeline: " + err.Error())
	}
	return s
}

// compressWriter is what *flate.Writer, *zlib.Writer and *gzip.Writer
// have in common.
type compressWriter interface {
	io.Writer
	Flush() error
	Close() error
}

type compressor struct {
	format Format
	w      compressWriter
	sink   bufferSink // where w's output goes: dst, or held under a limit
	held   actor.Buffer
	dirty  bool // input since the last flush
	closed bool
	err    error
}

// bufferSink appends to a Buffer chosen per call.
type bufferSink struct{ b *actor.Buffer }

func (s *bufferSink) Write(p []byte) (int, error) { return s.b.Write(p) }

func (z *compressor) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if z.err != nil {
		return Failed, z.err
	}
	moved := emit(dst, &z.held, limit)
	if z.closed {
		if src.Len() > 0 {
			z.err = fmt.Errorf("%w: %v compress: output after Finished", ErrTrailingData, z.format)
			return Failed, z.err
		}
		return result(moved > 0), nil
	}
	// With no limit and nothing held, the compressor writes straight into
	// dst; otherwise into held, which is emitted up to the limit.
	z.sink.b = &z.held
	if limit < 0 && z.held.Len() == 0 {
		z.sink.b = dst
	}
	dstBefore := dst.Len()
	consumed := src.Len()
	if consumed > 0 {
		z.dirty = true
		if _, err := src.WriteTo(z.w); err != nil {
			return z.fail(err)
		}
	}
	switch {
	case mode == actor.Finished:
		z.closed = true
		if err := z.w.Close(); err != nil {
			return z.fail(err)
		}
	case mode == actor.Flush && z.dirty:
		z.dirty = false
		if err := z.w.Flush(); err != nil {
			return z.fail(err)
		}
	}
	moved += dst.Len() - dstBefore
	moved += emit(dst, &z.held, remaining(limit, moved))
	return result(moved > 0 || consumed > 0), nil
}

func (z *compressor) fail(err error) (Result, error) {
	z.err = fmt.Errorf("pipeline: %v compress: %w", z.format, err)
	return Failed, z.err
}

// Buffered is the compressed output held back by the limit.
func (z *compressor) Buffered() int { return z.held.Len() }

// Close drops held output; the stream is not finished.
func (z *compressor) Close() error {
	z.held.Reset()
	return nil
}

// decompEvent is what the decompressing coroutine reports when it yields.
type decompEvent uint8

const (
	evNeedInput decompEvent = iota // src is empty: call again with more
	evOutput                       // held has new output
	evEnd                          // the stream ended cleanly
	evError                        // d.err says why
)

var errStopped = errors.New("pipeline: decompressor closed")

// decompressor runs a compress/* reader, which pulls its input, inside a
// coroutine (iter.Pull) so that it can stop when src runs dry and go on
// at the next call, on the filter's actor goroutine, without a goroutine
// of its own that would block.
type decompressor struct {
	format Format
	r      srcReader
	held   actor.Buffer
	once   onceReader
	next   func() (decompEvent, bool)
	stop   func()
	ended  bool
	err    error
}

func (d *decompressor) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if d.err != nil {
		return Failed, d.err
	}
	moved := emit(dst, &d.held, limit)
	srcBefore := src.Len()
	d.r.src = src
	d.r.finished = mode == actor.Finished
loop:
	for d.held.Len() == 0 && !d.ended && remaining(limit, moved) != 0 {
		if d.next == nil {
			if src.Len() == 0 {
				break // no stream yet: an empty input is an empty stream
			}
			d.next, d.stop = iter.Pull(d.run)
		}
		ev, ok := d.next()
		if !ok {
			ev = evEnd
		}
		switch ev {
		case evNeedInput:
			break loop
		case evOutput:
			moved += emit(dst, &d.held, remaining(limit, moved))
		case evEnd:
			d.ended = true
			d.stop()
		case evError:
			d.stop()
			return Failed, d.err
		}
	}
	// The last piece of a stream comes with its end.
	moved += emit(dst, &d.held, remaining(limit, moved))
	if d.ended && src.Len() > 0 {
		d.err = fmt.Errorf("%w: %v decompress", ErrTrailingData, d.format)
		return Failed, d.err
	}
	return result(moved > 0 || src.Len() != srcBefore), nil
}

// run is the coroutine: it opens the format's reader over d.r and reads
// it piece by piece into held, yielding after each piece.
func (d *decompressor) run(yield func(decompEvent) bool) {
	d.r.yield = yield
	var (
		rc  io.Reader
		err error
	)
	switch d.format {
	case FormatFlate:
		rc = flate.NewReader(&d.r)
	case FormatZlib:
		rc, err = zlib.NewReader(&d.r)
	case FormatGzip:
		rc, err = gzip.NewReader(&d.r)
	}
	for err == nil {
		d.once = onceReader{r: rc}
		if _, rerr := d.held.ReadFrom(&d.once); rerr != nil {
			err = rerr
			break
		}
		err = d.once.err
		d.r.sync()
		if d.held.Len() > 0 && !yield(evOutput) {
			return
		}
	}
	d.r.sync()
	if err == io.EOF {
		yield(evEnd)
		return
	}
	d.err = d.classify(err)
	yield(evError)
}

func (d *decompressor) classify(err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, errStopped):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %v decompress: %w", ErrTruncated, d.format, err)
	case errors.As(err, &corrupt), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum),
		errors.Is(err, zlib.ErrHeader), errors.Is(err, zlib.ErrChecksum), errors.Is(err, zlib.ErrDictionary):
		return fmt.Errorf("%w: %v decompress: %w", ErrCorrupt, d.format, err)
	}
	return fmt.Errorf("pipeline: %v decompress: %w", d.format, err)
}

// Buffered is the decompressed output held back by the limit.
func (d *decompressor) Buffered() int { return d.held.Len() }

// Close ends a stream cut short (its coroutine) and drops held output.
func (d *decompressor) Close() error {
	if d.stop != nil {
		d.stop()
	}
	d.held.Reset()
	return nil
}

// srcReader feeds a decompressor from the stage's src. It is an
// io.ByteReader, so compress/* read exactly what they need instead of
// buffering ahead, and when src is empty it yields to the stage's caller
// until the next call brings more (or, with finished, reports io.EOF).
type srcReader struct {
	src      *actor.Buffer
	cur      []byte // a contiguous view of src's front, valid until sync
	off      int    // bytes of cur consumed
	finished bool
	yield    func(decompEvent) bool
}

// sync drains what was consumed from src and drops the view.
func (r *srcReader) sync() {
	if r.cur != nil {
		r.src.Drain(r.off)
		r.cur, r.off = nil, 0
	}
}

func (r *srcReader) fill() error {
	r.sync()
	for r.src.Len() == 0 {
		if r.finished {
			return io.EOF
		}
		if !r.yield(evNeedInput) {
			return errStopped
		}
	}
	r.cur = r.src.Pullup(min(r.src.Len(), pullMax))
	return nil
}

func (r *srcReader) ReadByte() (byte, error) {
	if r.off == len(r.cur) {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	c := r.cur[r.off]
	r.off++
	return c, nil
}

func (r *srcReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.off == len(r.cur) {
		if err := r.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.cur[r.off:])
	r.off += n
	return n, nil
}

// onceReader makes Buffer.ReadFrom read one piece: it passes one Read of
// r through (straight into a pooled chunk) and then reports io.EOF,
// keeping r's own error in err.
type onceReader struct {
	r    io.Reader
	done bool
	err  error
}

func (o *onceReader) Read(p []byte) (int, error) {
	if o.done {
		return 0, io.EOF
	}
	o.done = true
	n, err := o.r.Read(p)
	if err != nil {
		o.err = err
		return n, io.EOF
	}
	return n, nil
}

// emit moves up to limit bytes (all when limit is negative) from held to
// dst and returns how many.
func emit(dst, held *actor.Buffer, limit int) int {
	if held.Len() == 0 || limit == 0 {
		return 0
	}
	return moveN(dst, held, limit)
}

// remaining is what is left of limit after moved bytes; -1 stays -1.
func remaining(limit, moved int) int {
	if limit < 0 {
		return -1
	}
	return max(0, limit-moved)
}

// result is OK when the stage made progress, else NeedMore.
func result(progress bool) Result {
	if progress {
		return OK
	}
	return NeedMore
}
