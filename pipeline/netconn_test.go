package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// makePipe returns a nettest.MakePipe whose two ends are Conn views of
// the bufferevents wrap makes over a link of the given kind.
func makePipe(t *testing.T, kind string, wrap func(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent)) nettest.MakePipe {
	return func() (net.Conn, net.Conn, func(), error) {
		base := actor.NewBase()
		a, b := newLink(t, base, kind, 0)
		if wrap != nil {
			a, b = wrap(t, a, b)
		}
		c1, err := pipeline.NewConn(a)
		if err != nil {
			base.Close()
			return nil, nil, nil, err
		}
		c2, err := pipeline.NewConn(b)
		if err != nil {
			c1.Close()
			base.Close()
			return nil, nil, nil, err
		}
		stop := func() {
			c1.Close()
			c2.Close()
			if err := base.Close(); err != nil {
				t.Errorf("base.Close() = %v", err)
			}
		}
		return c1, c2, stop, nil
	}
}

func TestConnNettest(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) { nettest.TestConn(t, makePipe(t, kind, nil)) })
	}
}

// passFilters wraps both ends in pass-through filters with CloseOnFree.
func passFilters(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	fa, err := pipeline.NewFilter(a, nil, pipeline.PassThrough(), actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	fb, err := pipeline.NewFilter(b, pipeline.PassThrough(), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	return fa, fb
}

// The view passes the conformance suite over filters as well.
func TestConnNettestOverFilters(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) { nettest.TestConn(t, makePipe(t, kind, passFilters)) })
	}
}

func TestNewConnErrors(t *testing.T) {
	if _, err := pipeline.NewConn(nil); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("NewConn(nil) = %v, want ErrInvalid", err)
	}
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	closeAll(t, a, b)
	if _, err := pipeline.NewConn(a); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("NewConn(closed) = %v, want ErrClosed", err)
	}
}

// A Conn not made by NewConn, a zero value or a nil pointer, fails every
// method with ErrInvalid and reports nil addresses; none panics or
// blocks (a zero Conn's Read used to panic holding its lock, so that the
// next Write waited for ever).
func TestZeroConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *pipeline.Conn
	}{{"zero", new(pipeline.Conn)}, {"nil", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			var buf actor.Buffer
			buf.WriteString("x")
			_, rerr := c.Read(make([]byte, 4))
			_, rberr := c.ReadBuffer(&buf, 4)
			_, werr := c.Write([]byte("x"))
			_, wberr := c.WriteBuffer(&buf, true)
			errs := map[string]error{
				"Read":             rerr,
				"ReadBuffer":       rberr,
				"Write":            werr,
				"WriteBuffer":      wberr,
				"CloseWrite":       c.CloseWrite(),
				"SetDeadline":      c.SetDeadline(time.Now()),
				"SetReadDeadline":  c.SetReadDeadline(time.Now()),
				"SetWriteDeadline": c.SetWriteDeadline(time.Now()),
				"Close":            c.Close(),
			}
			for name, err := range errs {
				if !errors.Is(err, pipeline.ErrInvalid) {
					t.Errorf("%s on a %s Conn = %v, want ErrInvalid", name, tc.name, err)
				}
			}
			if c.LocalAddr() != nil || c.RemoteAddr() != nil || c.Bufferevent() != nil {
				t.Errorf("a %s Conn reports addresses %v, %v or a bufferevent, want nil", tc.name, c.LocalAddr(), c.RemoteAddr())
			}
			if buf.Len() != 1 {
				t.Errorf("WriteBuffer on a %s Conn took the buffer", tc.name)
			}
		})
	}
}

// Errors follow net.Conn conventions: io.EOF bare, ErrClosed matching
// net.ErrClosed, timeouts matching os.ErrDeadlineExceeded.
func TestConnErrors(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	c1, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	c2, err := pipeline.NewConn(b)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	if c1.LocalAddr().Network() != "bev" || c1.RemoteAddr().String() != c2.LocalAddr().String() {
		t.Errorf("addresses %v -> %v, want bev addresses with the partner's as remote", c1.LocalAddr(), c1.RemoteAddr())
	}
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	if _, err := c2.Write([]byte("bye")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if err := c2.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite = %v", err)
	}
	if _, err := c2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after CloseWrite = %v, want net.ErrClosed", err)
	}
	c1.SetReadDeadline(time.Time{})
	got, err := io.ReadAll(c1)
	if err != nil || string(got) != "bye" {
		t.Errorf("ReadAll = %q, %v, want %q, nil", got, err, "bye")
	}
	if err := c1.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) || !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed and net.ErrClosed", err)
	}
	if err := c2.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// These tests show that NewConn is the io.Reader and io.Writer view of a
// bufferevent with Go's contract (issue 13, item 5): Read waits for at
// least one byte and returns io.EOF after the peer's EOF, Write blocks at
// the write high watermark. A *actor.Bufferevent itself is no io.Reader:
// its non-blocking read is TryRead.

// newViews returns NewConn views of both ends of a link of the given kind.
func newViews(t *testing.T, kind string) (*pipeline.Conn, *pipeline.Conn, *actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	a, b := newLink(t, testbev.NewBase(t), kind, 0)
	ca, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatalf("NewConn(a) = %v", err)
	}
	cb, err := pipeline.NewConn(b)
	if err != nil {
		t.Fatalf("NewConn(b) = %v", err)
	}
	t.Cleanup(func() {
		// Concurrently: over TCP each Close lingers for the other's EOF.
		done := make(chan struct{})
		go func() { ca.Close(); close(done) }()
		cb.Close()
		<-done
	})
	return ca, cb, a, b
}

func TestBuffereventIsNoReader(t *testing.T) {
	if _, ok := any(new(actor.Bufferevent)).(io.Reader); ok {
		t.Errorf("*actor.Bufferevent is an io.Reader without keeping its contract; the Go view is pipeline.NewConn")
	}
}

// testing/iotest's TestReader, and its awkward readers, over the view.
func TestViewIotest(t *testing.T) {
	content := testkit.Pattern(300 << 10)
	for _, kind := range linkKinds {
		for _, wrap := range []struct {
			name string
			r    func(io.Reader) io.Reader
		}{
			{"plain", func(r io.Reader) io.Reader { return r }},
			{"OneByteReader", iotest.OneByteReader},
			{"HalfReader", iotest.HalfReader},
		} {
			t.Run(kind+"/"+wrap.name, func(t *testing.T) {
				ca, cb, _, _ := newViews(t, kind)
				content := content
				if wrap.name == "OneByteReader" {
					content = content[:20<<10] // one byte per Read: keep it short
				}
				werr := writeAndClose(ca, content)
				if err := iotest.TestReader(wrap.r(cb), content); err != nil {
					t.Errorf("iotest.TestReader: %v", err)
				}
				if err := testkit.Recv(t, werr, "writer"); err != nil {
					t.Errorf("Write/CloseWrite = %v", err)
				}
			})
		}
	}
}

// writeAndClose writes p to c and half-closes it, on a goroutine of its
// own, and reports the first error (or nil) on the channel it returns.
func writeAndClose(c *pipeline.Conn, p []byte) <-chan error {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(p)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	return werr
}

// iotest.DataErrReader over the view: the last bytes come with io.EOF.
func TestViewDataErrReader(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			ca, cb, _, _ := newViews(t, kind)
			content := testkit.Pattern(100 << 10)
			werr := writeAndClose(ca, content)
			got, err := io.ReadAll(iotest.DataErrReader(cb))
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("ReadAll(DataErrReader(view)) = %d bytes, %v, want the %d written", len(got), err, len(content))
			}
			if err := testkit.Recv(t, werr, "writer"); err != nil {
				t.Errorf("Write/CloseWrite = %v", err)
			}
		})
	}
}

// bufio's ReadString over lines that arrive one by one, and fmt.Fprintf
// writing them: with a read that returned (0, nil) on an empty input,
// bufio would fail with io.ErrNoProgress.
func TestViewBufioFprintf(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			ca, cb, _, _ := newViews(t, kind)
			const lines = 200
			ack := make(chan struct{})
			werr := make(chan error, 1)
			go func() {
				for i := range lines {
					if _, err := fmt.Fprintf(ca, "line %d of %d\n", i, lines); err != nil {
						werr <- err
						return
					}
					if i%10 == 0 {
						<-ack // the reader is waiting on an empty input now and then
					}
				}
				werr <- ca.CloseWrite()
			}()
			br := bufio.NewReader(cb)
			for i := range lines {
				s, err := br.ReadString('\n')
				if want := fmt.Sprintf("line %d of %d\n", i, lines); err != nil || s != want {
					t.Fatalf("ReadString = %q, %v, want %q", s, err, want)
				}
				if i%10 == 0 {
					ack <- struct{}{}
				}
			}
			if s, err := br.ReadString('\n'); err != io.EOF || s != "" {
				t.Errorf("ReadString after the last line = %q, %v, want io.EOF", s, err)
			}
			if err := testkit.Recv(t, werr, "writer"); err != nil {
				t.Errorf("Fprintf/CloseWrite = %v", err)
			}
		})
	}
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// heapMeter is an io.Writer that counts what it is given and samples the
// live heap every step bytes.
type heapMeter struct {
	n, next, step int64
	peak          uint64
}

func (m *heapMeter) Write(p []byte) (int, error) {
	m.n += int64(len(p))
	if m.n >= m.next {
		m.next += m.step
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.peak = max(m.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

// io.Copy of 1 GiB into the view, read on the other end by io.Copy too,
// stays within the watermarks: the live heap grows by a few chunks, not
// by what was copied. (About 0.15 s, 2-3 s under the race detector;
// 256 MiB with -short.)
func TestViewCopyBounded(t *testing.T) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 256 << 20
	}
	const high = 64 << 10
	ca, cb, a, b := newViews(t, "pair")
	a.SetWatermark(actor.Write, 0, high)
	b.SetWatermark(actor.Read, 0, high)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	meter := &heapMeter{step: 16 << 20}
	rerr := make(chan error, 1)
	go func() {
		_, err := io.Copy(meter, cb)
		rerr <- err
	}()
	start := time.Now()
	n, err := io.Copy(ca, io.LimitReader(zeros{}, size))
	if err != nil || n != size {
		t.Fatalf("io.Copy into the view = %d, %v, want %d, nil", n, err, size)
	}
	if err := ca.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite = %v", err)
	}
	if err := testkit.Recv(t, rerr, "the reader's io.Copy"); err != nil || meter.n != size {
		t.Fatalf("reader's io.Copy = %d, %v, want %d, nil", meter.n, err, size)
	}
	grew := int64(meter.peak) - int64(base)
	t.Logf("copied %d MiB in %v; live heap grew by at most %.1f MiB", size>>20, time.Since(start).Round(time.Millisecond), float64(grew)/(1<<20))
	if grew > 16<<20 {
		t.Errorf("live heap grew by %d MiB during the copy, want under 16 MiB (watermarks of 64 KiB)", grew>>20)
	}
}

// A Conn's buffer methods move chunks in and out of its bufferevent, within
// their limits, and refuse bad arguments.
func TestConnBufferMethods(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	ca, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := pipeline.NewConn(b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	defer ca.Close()
	deadline := time.Now().Add(testkit.WaitTime)
	ca.SetDeadline(deadline)
	cb.SetDeadline(deadline)

	if _, err := ca.WriteBuffer(nil, true); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("WriteBuffer(nil) = %v, want ErrInvalid", err)
	}
	if _, err := cb.ReadBuffer(nil, 10); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("ReadBuffer(nil) = %v, want ErrInvalid", err)
	}
	var dst actor.Buffer
	if n, err := cb.ReadBuffer(&dst, 0); n != 0 || err != nil {
		t.Errorf("ReadBuffer(max 0) = %d, %v, want 0, nil", n, err)
	}

	want := testkit.Pattern(60 << 10) // under the view's write high watermark: nobody reads yet
	var src actor.Buffer
	src.AppendOwned(want[:30<<10])
	src.AppendOwned(want[30<<10:])
	if n, err := ca.WriteBuffer(&src, true); n != int64(len(want)) || err != nil || src.Len() != 0 {
		t.Fatalf("WriteBuffer = %d, %v (%d left), want %d, nil (0 left)", n, err, src.Len(), len(want))
	}
	var got []byte
	for len(got) < len(want) {
		n, err := cb.ReadBuffer(&dst, 7000)
		if err != nil {
			t.Fatalf("ReadBuffer after %d bytes = %v", len(got), err)
		}
		if n < 1 || n > 7000 || dst.Len() != n {
			t.Fatalf("ReadBuffer(max 7000) = %d with %d in dst, want 1..7000, all in dst", n, dst.Len())
		}
		got = append(got, make([]byte, n)...)
		dst.Read(got[len(got)-n:])
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read bytes differ from those written")
	}

	// Without wait, a view at its write high watermark takes what fits
	// and returns at once. b does not read, so a's output stays full.
	if err := a.SetWatermark(actor.Write, 0, 1000); err != nil {
		t.Fatal(err)
	}
	cb.SetReadDeadline(time.Now()) // nobody reads b's end any more
	src.Write(testkit.Pattern(8 << 10))
	var took int64
	for range 3 {
		n, err := ca.WriteBuffer(&src, false)
		if err != nil {
			t.Fatalf("WriteBuffer(no wait) = %v", err)
		}
		took += n
	}
	if took > 8<<10 || int(took)+src.Len() != 8<<10 {
		t.Errorf("WriteBuffer(no wait) took %d and left %d of 8192", took, src.Len())
	}

	ca.CloseWrite()
	if _, err := ca.WriteBuffer(&src, true); err == nil {
		t.Errorf("WriteBuffer after CloseWrite = nil, want an error")
	}
	cb.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if _, err := io.Copy(io.Discard, cb); err != nil {
		t.Errorf("reading to EOF = %v", err)
	}
	if n, err := cb.ReadBuffer(&dst, 10); n != 0 || err != io.EOF {
		t.Errorf("ReadBuffer at EOF = %d, %v, want 0, io.EOF", n, err)
	}
}

// gzipConn returns the net.Conn view of a gzip-over-TCP stack on nc: a
// socket bufferevent, depth filters that each gunzip what they read and
// gzip what they write, and the view over the top one.
func gzipConn(t testing.TB, base *actor.Base, nc net.Conn, depth int) (net.Conn, error) {
	t.Helper()
	f, err := actor.New(base, nc, actor.CloseOnFree)
	if err != nil {
		nc.Close()
		return nil, err
	}
	for range depth {
		up, err := pipeline.NewFilter(f, pipeline.Gunzip(), pipeline.Gzip(), actor.CloseOnFree)
		if err != nil {
			f.Close()
			return nil, err
		}
		f = up
	}
	c, err := pipeline.NewConn(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// gzipListener wraps what a TCP listener accepts in gzipConn.
type gzipListener struct {
	net.Listener
	t     testing.TB
	base  *actor.Base
	depth int
}

func (l gzipListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return gzipConn(l.t, l.base, nc, l.depth)
}

// net/http, unmodified, on both sides of gzip-over-TCP: every Write of
// the view is on its way to the peer when it returns (the view flushes
// the compressor), so requests and responses are not held back, and
// several requests share one keep-alive connection. Over a stack of two
// such filters, the lower compressor is flushed too.
func TestHTTPOverGzipConn(t *testing.T) {
	for _, depth := range []int{1, 2} {
		t.Run(fmt.Sprintf("depth%d", depth), func(t *testing.T) { testHTTPOverGzip(t, depth) })
	}
}

func testHTTPOverGzip(t *testing.T, depth int) {
	base := testbev.NewBase(t)
	ln := testconn.Listen(t)
	var accepted atomic.Int32
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %s %d:%s", r.Method, r.URL.Path, len(body), strings.ToUpper(string(body)))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(gzipListener{ln, t, base, depth}); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	var dials atomic.Int32
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return gzipConn(t, base, nc, depth)
		},
		DisableCompression: true,
	}
	defer func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown = %v", err)
			srv.Close()
		}
		wg.Wait()
	}()
	client := &http.Client{Transport: tr, Timeout: testkit.WaitTime}
	url := "http://" + ln.Addr().String()
	for i := range 5 {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = client.Get(fmt.Sprintf("%s/get/%d", url, i))
		} else {
			resp, err = client.Post(fmt.Sprintf("%s/post/%d", url, i), "text/plain", strings.NewReader(strings.Repeat("abc", i*1000)))
		}
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: reading the body: %v", i, err)
		}
		want := fmt.Sprintf("GET /get/%d 0:", i)
		if i%2 == 1 {
			want = fmt.Sprintf("POST /post/%d %d:%s", i, i*3000, strings.Repeat("ABC", i*1000))
		}
		if resp.StatusCode != http.StatusOK || string(body) != want {
			t.Fatalf("request %d: %s %.60q, want 200 %.60q", i, resp.Status, body, want)
		}
	}
	if d, a := dials.Load(), accepted.Load(); d != 1 || a != 1 {
		t.Errorf("%d dials and %d accepted connections for 5 requests, want one keep-alive connection", d, a)
	}
}

// gzipFilters wraps both ends in filters that gzip what they write and
// gunzip what they read.
func gzipFilters(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	fa, err := pipeline.NewFilter(a, pipeline.Gunzip(), pipeline.Gzip(), actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	fb, err := pipeline.NewFilter(b, pipeline.Gunzip(), pipeline.Gzip(), actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	return fa, fb
}

// The view passes the conformance suite over a compressing stack, whose
// ping-pong tests wait for each Write to reach the peer. (Over a pair:
// TestHTTPOverGzipConn runs the stack over TCP, and the suite over TCP
// spends its time in lingering closes that TestConnNettest covers.)
func TestConnNettestOverGzip(t *testing.T) {
	nettest.TestConn(t, makePipe(t, "pair", gzipFilters))
}

// A Read and a Write of the view that wait (nothing to read; a peer that
// never reads, so the output is at its high watermark) return once the
// bufferevent under the view is closed by another goroutine, not through
// the view: Close, Free or the Base's Close, of the bufferevent itself or,
// when the view is over a filter, of the filter's underlying; and Close
// once Read has returned the peer's EOF (a half-close). Read gives
// io.EOF or an error matching net.ErrClosed, Write an error matching
// net.ErrClosed (or EPIPE when the Base's Close closed the partner first),
// never io.EOF, and the view's Close returns afterwards. (A Write cut by a
// close after the bufferevent had read its peer's EOF returned an error
// matching io.EOF.)
func TestViewWhenBuffereventCloses(t *testing.T) {
	for _, over := range []string{"bufferevent", "filter's underlying"} {
		for _, closer := range []string{"Close", "Free", "Base.Close", "Close after EOF"} {
			t.Run(over+"/"+closer, func(t *testing.T) {
				a, partner := testbev.NewPair(t, 0) // the partner never reads
				b := a
				if over != "bufferevent" {
					f, err := pipeline.NewFilter(a, nil, nil, actor.CloseOnFree)
					if err != nil {
						t.Fatal(err)
					}
					b = f
				}
				if err := b.SetWatermark(actor.Write, 0, 4<<10); err != nil {
					t.Fatal(err)
				}
				view, err := pipeline.NewConn(b)
				if err != nil {
					t.Fatal(err)
				}
				readErr, writeErr := make(chan error, 1), make(chan error, 1)
				go func() {
					_, err := view.Read(make([]byte, 8))
					readErr <- err
				}()
				go func() {
					_, err := view.Write(make([]byte, 8<<20))
					writeErr <- err
				}()
				// Both wait: the write cannot finish and nothing comes to
				// read. Wait until the output holds its high watermark.
				deadline := time.Now().Add(testkit.WaitTime)
				for a.OutputLen() < 4<<10 && b.OutputLen() < 4<<10 {
					if time.Now().After(deadline) {
						t.Fatal("the view's Write did not fill the output")
					}
					runtime.Gosched()
				}
				var readEOF error
				switch closer {
				case "Close after EOF":
					// The partner half-closes: Read sees EOF, and only then
					// is the bufferevent closed under the waiting Write.
					partner.Flush(actor.Write, actor.Finished)
					readEOF = testkit.Recv(t, readErr, "Read to return the partner's EOF")
					readErr <- readEOF
					go a.Close()
				case "Close":
					go a.Close()
				case "Free":
					a.Free()
				default:
					go a.Base().Close()
				}
				if err := testkit.Recv(t, readErr, "Read to return"); err != io.EOF && !errors.Is(err, net.ErrClosed) || closer == "Close after EOF" && err != io.EOF {
					t.Errorf("Read = %v, want io.EOF or net.ErrClosed", err)
				}
				// The Base's Close closes the partner too: the pipe's
				// EPIPE may come first. A Write cut so is never io.EOF,
				// which a caller would take for a clean end.
				if err := testkit.Recv(t, writeErr, "Write to return"); !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) {
					t.Errorf("Write = %v, want net.ErrClosed (or EPIPE), not io.EOF", err)
				}
				closed := make(chan error, 1)
				go func() { closed <- view.Close() }()
				testkit.Recv(t, closed, "the view's Close")
				testkit.Recv(t, b.Done(), "the bufferevent under the view to stop")
			})
		}
	}
}
