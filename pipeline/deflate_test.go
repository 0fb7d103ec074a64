package pipeline_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
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

// A decompression bomb: a small compressed stream of zeros that inflates
// to n bytes. The filter over it, with a read high watermark, must hold
// no more decoded input than the watermark (plus one chunk) and no
// unbounded raw input, also when the underlying's EOF comes while the
// consumer is behind, and Close must not wait for the rest to inflate.

const (
	bombHigh  = 64 << 10 // the filter's read high watermark
	bombChunk = 64 << 10 // what a stage may emit past the room it had
	// bombMaxHeap is the most the heap may grow while a bomb is read:
	// issue 13's figure for a 1 GiB bomb at a 64 KiB watermark.
	bombMaxHeap = 8 << 20
)

var bombFormats = []struct {
	name   string
	format pipeline.Format
}{
	{"gunzip", pipeline.FormatGzip},
	{"inflate", pipeline.FormatFlate},
	{"unzlib", pipeline.FormatZlib},
}

var (
	bombMu    sync.Mutex
	bombCache = map[string][]byte{}
)

// bomb returns the compressed form, in format f, of n zero bytes.
func bomb(tb testing.TB, f pipeline.Format, n int) []byte {
	tb.Helper()
	key := fmt.Sprint(f, n)
	bombMu.Lock()
	defer bombMu.Unlock()
	if p, ok := bombCache[key]; ok {
		return p
	}
	var buf bytes.Buffer
	var w io.WriteCloser
	switch f {
	case pipeline.FormatGzip:
		w, _ = gzip.NewWriterLevel(&buf, flate.BestCompression)
	case pipeline.FormatFlate:
		w, _ = flate.NewWriter(&buf, flate.BestCompression)
	case pipeline.FormatZlib:
		w, _ = zlib.NewWriterLevel(&buf, flate.BestCompression)
	}
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zeros) {
		if _, err := w.Write(zeros[:min(left, len(zeros))]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	bombCache[key] = buf.Bytes()
	return buf.Bytes()
}

// heapSampler records the peak of the heap's live and unswept objects
// above what they were when it started.
type heapSampler struct {
	base, peak uint64
	stop       chan struct{}
	done       chan struct{}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{base: heapObjects(), stop: make(chan struct{}), done: make(chan struct{})}
	h.peak = h.base
	go func() {
		defer close(h.done)
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if v := heapObjects(); v > h.peak {
				h.peak = v
			}
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

// Stop joins the sampler and returns the peak growth.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	if v := heapObjects(); v > h.peak {
		h.peak = v
	}
	return h.peak - h.base
}

// bombRun is one filter reading a bomb over loopback TCP.
type bombRun struct {
	f        *actor.Bufferevent
	sent     chan error // the sender's result: it wrote the bomb and closed
	got      atomic.Int64
	maxIn    atomic.Int64
	progress chan struct{} // signalled when got passes stopAt
	stopAt   int64
	hold     bool // past stopAt, leave the input undrained
	end      chan actor.EventInfo
}

// filter makes r.f: a filter with input stage in over the server end of
// a loopback TCP connection, read high watermark bombHigh. It returns the
// client end, for send.
func (r *bombRun) filter(t testing.TB, in pipeline.Stage) net.Conn {
	t.Helper()
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	sock, err := actor.New(base, c2, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	r.f, err = pipeline.NewFilter(sock, in, nil, actor.CloseOnFree)
	if err != nil {
		sock.Close()
		t.Fatalf("NewFilter = %v", err)
	}
	r.f.SetWatermark(actor.Read, 0, bombHigh)
	return c1
}

// send writes wire into c1 and closes it on a goroutine that the test's
// end joins (closing c1 first, which ends a write still blocked); r.sent
// gets the outcome.
func (r *bombRun) send(t testing.TB, c1 net.Conn, wire []byte) {
	r.sent = make(chan error, 1)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		c1.Close()
		wg.Wait()
	})
	wg.Go(func() {
		_, err := c1.Write(wire)
		r.sent <- errors.Join(err, c1.Close())
	})
}

// startBomb sends wire over TCP into a filter with the given input stage
// and read high watermark; the consumer drains the input at each read
// callback and signals progress when what it got passes stopAt (when
// positive).
func startBomb(t testing.TB, in pipeline.Stage, wire []byte, stopAt int64) *bombRun {
	t.Helper()
	return startBombRun(t, &bombRun{stopAt: stopAt}, in, wire)
}

// startBombRun is startBomb for r, which holds stopAt and hold.
func startBombRun(t testing.TB, r *bombRun, in pipeline.Stage, wire []byte) *bombRun {
	t.Helper()
	r.progress, r.end = make(chan struct{}, 1), make(chan actor.EventInfo, 4)
	c1 := r.filter(t, in)
	r.f.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			n := int64(s.Input().Len())
			if n > r.maxIn.Load() {
				r.maxIn.Store(n)
			}
			if r.hold && r.stopAt > 0 && r.got.Load() >= r.stopAt {
				return
			}
			s.Input().Drain(int(n))
			if got := r.got.Add(n); r.stopAt > 0 && got >= r.stopAt && got-n < r.stopAt {
				testkit.Signal(r.progress)
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			select {
			case r.end <- actor.EventInfo{Event: ev, Err: err}:
			default:
			}
		},
	})
	r.f.Enable(actor.Read)
	r.send(t, c1, wire)
	return r
}

// startBombView sends wire over TCP into a filter with the given input
// stage and read high watermark, read through the net.Conn view by a
// goroutine (a consumer on another goroutine, slower than the actor):
// r.end gets Reading|EOF when Read returned io.EOF, with the count in
// r.got. The view is closed, and the goroutine joined, when the test
// ends.
func startBombView(t testing.TB, in pipeline.Stage, wire []byte) *bombRun {
	t.Helper()
	r := &bombRun{end: make(chan actor.EventInfo, 1)}
	c1 := r.filter(t, in)
	view, err := pipeline.NewConn(r.f)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		view.Close()
		wg.Wait()
	})
	wg.Go(func() {
		p := make([]byte, 32<<10)
		for {
			n, err := view.Read(p)
			r.got.Add(int64(n))
			if err != nil {
				ev := actor.EventInfo{Event: actor.Reading | actor.EOF, Err: err}
				if err != io.EOF {
					ev.Event = actor.Reading | actor.Error
				}
				r.end <- ev
				return
			}
		}
	})
	r.send(t, c1, wire)
	return r
}

// TestDecompressBombView reads a bomb through the net.Conn view, on a
// goroutine of its own: the raw bytes waiting undecoded and the decoded
// input stay bounded while the reader lags, so the heap does.
func TestDecompressBombView(t *testing.T) {
	n := bombSize()
	wire := bomb(t, pipeline.FormatGzip, n)
	h := startHeapSampler()
	r := startBombView(t, pipeline.Gunzip(), wire)
	e := testkit.Recv(t, r.end, "the view's EOF")
	peak := h.Stop()
	if err := testkit.Recv(t, r.sent, "the sender"); err != nil {
		t.Fatalf("sender: %v", err)
	}
	if e.Event != actor.Reading|actor.EOF || r.got.Load() != int64(n) {
		t.Fatalf("read %d bytes, then %v %v; want %d and io.EOF", r.got.Load(), e.Event, e.Err, n)
	}
	if peak > bombMaxHeap {
		t.Errorf("heap grew by %.1f MiB reading a %d MiB bomb, want under %d MiB",
			float64(peak)/(1<<20), n>>20, bombMaxHeap>>20)
	}
	t.Logf("%d MiB bomb through the view: peak heap +%.2f MiB", n>>20, float64(peak)/(1<<20))
}

// bombSize is how much a test bomb decodes to: 256 MiB, or 16 MiB under
// -race or -short.
func bombSize() int {
	if raceEnabled || testing.Short() {
		return 16 << 20
	}
	return 256 << 20
}

// TestDecompressBomb reads a bomb to its end: the decoded input never
// passes the watermark (plus a chunk), the heap stays small, every byte
// arrives and the EOF comes after them.
func TestDecompressBomb(t *testing.T) {
	n := bombSize()
	for _, tc := range bombFormats {
		t.Run(tc.name, func(t *testing.T) {
			wire := bomb(t, tc.format, n)
			st, _ := pipeline.Decompress(tc.format)
			h := startHeapSampler()
			r := startBomb(t, st, wire, 0)
			e := testkit.Recv(t, r.end, "the filter's EOF")
			peak := h.Stop()
			if err := testkit.Recv(t, r.sent, "the sender"); err != nil {
				t.Fatalf("sender: %v", err)
			}
			if e.Event != actor.Reading|actor.EOF {
				t.Fatalf("event %v %v, want Reading|EOF", e.Event, e.Err)
			}
			if got := r.got.Load(); got != int64(n) {
				t.Errorf("read %d bytes before the EOF, want %d", got, n)
			}
			if m := r.maxIn.Load(); m > bombHigh+bombChunk {
				t.Errorf("the input held %d bytes, over the high watermark %d plus a chunk", m, bombHigh)
			}
			if peak > bombMaxHeap {
				t.Errorf("heap grew by %.1f MiB reading a %d MiB bomb, want under %d MiB",
					float64(peak)/(1<<20), n>>20, bombMaxHeap>>20)
			}
			t.Logf("%d MiB bomb (%d bytes on the wire): peak heap +%.2f MiB, max input %d",
				n>>20, len(wire), float64(peak)/(1<<20), r.maxIn.Load())
			closeAll(t, r.f)
		})
	}
}

// TestDecompressBombClose closes the filter while most of a bomb is still
// to inflate, after the sender has sent all of it and closed: Close
// returns without inflating the rest at the EOF. The consumer stops
// draining once it has its first watermark's worth, so the stage has
// room for a watermark and a chunk more at most, however the machine
// runs the test; what it emitted by the time Close returns says whether
// Close inflated the rest. (This used to time Close against 100 ms: on a
// loaded machine it took 121-205 ms, in scheduling alone.)
func TestDecompressBombClose(t *testing.T) {
	n := bombSize()
	for _, tc := range bombFormats {
		t.Run(tc.name, func(t *testing.T) {
			wire := bomb(t, tc.format, n)
			st, _ := pipeline.Decompress(tc.format)
			cs := &countingStage{in: st}
			r := startBombRun(t, &bombRun{stopAt: bombHigh, hold: true}, cs, wire)
			if err := testkit.Recv(t, r.sent, "the sender"); err != nil {
				t.Fatalf("sender: %v", err)
			}
			testkit.Recv(t, r.progress, "the first read")
			if err := r.f.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			// What the consumer took (got), a watermark it left, and a
			// chunk a stage may emit past its room.
			if out, most := cs.out.Load(), r.got.Load()+bombHigh+bombChunk; out > most {
				t.Errorf("the stage emitted %d bytes of the %d-byte bomb by the time Close returned, over %d: the rest was inflated", out, n, most)
			}
			if m := r.maxIn.Load(); m > bombHigh+bombChunk {
				t.Errorf("the input held %d bytes, over the high watermark %d plus a chunk", m, bombHigh)
			}
		})
	}
}

// countingStage is a stage that counts what in emits; it passes on in's
// Buffered and Close, which a decompressor has.
type countingStage struct {
	in  pipeline.Stage
	out atomic.Int64
}

func (c *countingStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	before := dst.Len()
	res, err := c.in.Process(dst, src, limit, mode)
	c.out.Add(int64(dst.Len() - before))
	return res, err
}

func (c *countingStage) Buffered() int { return c.in.(interface{ Buffered() int }).Buffered() }

func (c *countingStage) Close() error { return c.in.(io.Closer).Close() }

// BenchmarkDecompressBomb is the figure of issue 13: a 1 GiB bomb read
// through a filter with a 64 KiB read high watermark; it reports the
// heap's peak growth and how long Close takes with the bomb half read.
func BenchmarkDecompressBomb(b *testing.B) {
	const n = 1 << 30
	for _, tc := range bombFormats {
		b.Run(tc.name, func(b *testing.B) {
			wire := bomb(b, tc.format, n)
			b.SetBytes(n)
			b.ReportAllocs()
			var peak uint64
			var closeTime time.Duration
			for b.Loop() {
				st, _ := pipeline.Decompress(tc.format)
				h := startHeapSampler()
				r := startBomb(b, st, wire, 0)
				e := testkit.Recv(b, r.end, "the filter's EOF")
				peak = max(peak, h.Stop())
				<-r.sent
				if e.Event != actor.Reading|actor.EOF || r.got.Load() != n {
					b.Fatalf("event %v %v after %d bytes", e.Event, e.Err, r.got.Load())
				}
				r.f.Close()

				st, _ = pipeline.Decompress(tc.format)
				r = startBomb(b, st, wire, n/2)
				<-r.sent
				testkit.Recv(b, r.progress, "half the bomb")
				start := time.Now()
				r.f.Close()
				closeTime = max(closeTime, time.Since(start))
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(closeTime.Microseconds())/1000, "close-ms")
		})
	}
	// The same bomb read through the net.Conn view by a goroutine: a
	// consumer slower than the actor.
	b.Run("gunzip-view", func(b *testing.B) {
		wire := bomb(b, pipeline.FormatGzip, n)
		b.SetBytes(n)
		b.ReportAllocs()
		var peak uint64
		for b.Loop() {
			h := startHeapSampler()
			r := startBombView(b, pipeline.Gunzip(), wire)
			e := testkit.Recv(b, r.end, "the view's EOF")
			peak = max(peak, h.Stop())
			<-r.sent
			if e.Event != actor.Reading|actor.EOF || r.got.Load() != n {
				b.Fatalf("event %v %v after %d bytes", e.Event, e.Err, r.got.Load())
			}
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	})
}

// rawWatch wraps an input stage and records the most raw bytes that
// waited for it undecoded (its src) at any call.
type rawWatch struct {
	pipeline.Stage
	maxSrc int
}

func (w *rawWatch) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	w.maxSrc = max(w.maxSrc, src.Len())
	return w.Stage.Process(dst, src, limit, mode)
}

func (w *rawWatch) Buffered() int { return buffered(w.Stage) }

func (w *rawWatch) Close() error { return w.Stage.(io.Closer).Close() }

// TestDecompressRawBounded: without an EOF, a decompressing filter takes
// compressed bytes only as it decodes them: its pull credit counts the
// raw bytes waiting undecoded, so they stay within the read high
// watermark (plus one pull), however far the stream expands.
func TestDecompressRawBounded(t *testing.T) {
	n := 8 << 20
	if raceEnabled || testing.Short() {
		n = 2 << 20
	}
	for _, tc := range bombFormats {
		t.Run(tc.name, func(t *testing.T) {
			plain := sample(n)
			c, _ := pipeline.Compress(tc.format, flate.DefaultCompression)
			wire := mustDrive(t, c, plain, 1<<20, -1)
			base := testbev.NewBase(t)
			a, b := newLink(t, base, "pair", 0)
			st, _ := pipeline.Decompress(tc.format)
			w := &rawWatch{Stage: st}
			f, err := pipeline.NewFilter(b, w, nil, actor.CloseOnFree|actor.DeferCallbacks)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, f, a)
			f.SetWatermark(actor.Read, 0, bombHigh)
			var got bytes.Buffer
			maxIn := 0
			done := make(chan struct{}, 1)
			f.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				maxIn = max(maxIn, s.Input().Len())
				s.Input().WriteTo(&got)
				if got.Len() >= len(plain) {
					testkit.Signal(done)
				}
			}})
			f.Enable(actor.Read)
			a.Write(wire)
			testkit.Recv(t, done, "the whole stream")
			var maxSrc int
			f.Do(func(*actor.Session) { maxSrc = w.maxSrc })
			t.Logf("%d bytes from %d compressed: at most %d raw bytes waited, %d decoded", len(plain), len(wire), maxSrc, maxIn)
			if !bytes.Equal(got.Bytes(), plain) {
				t.Fatalf("decoded %d bytes, not the %d sent", got.Len(), len(plain))
			}
			if maxSrc > 2*bombHigh {
				t.Errorf("%d raw bytes waited undecoded, want at most %d (twice the read high watermark)", maxSrc, 2*bombHigh)
			}
			if maxIn > bombHigh+bombChunk {
				t.Errorf("the input held %d bytes, over the high watermark %d plus a chunk", maxIn, bombHigh)
			}
		})
	}
}
