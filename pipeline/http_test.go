package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
