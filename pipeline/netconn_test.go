package pipeline_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
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
				werr := make(chan error, 1)
				go func() {
					_, err := ca.Write(content)
					if err == nil {
						err = ca.CloseWrite()
					}
					werr <- err
				}()
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

// iotest.DataErrReader over the view: the last bytes come with io.EOF.
func TestViewDataErrReader(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			ca, cb, _, _ := newViews(t, kind)
			content := testkit.Pattern(100 << 10)
			werr := make(chan error, 1)
			go func() {
				_, err := ca.Write(content)
				if err == nil {
					err = ca.CloseWrite()
				}
				werr <- err
			}()
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
