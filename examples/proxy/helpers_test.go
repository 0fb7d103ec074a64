package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
)

// syncBuffer collects what run writes to stdout or stderr and lets a test
// wait for a pattern without polling: every Write wakes the waiters.
type syncBuffer struct {
	mu   sync.Mutex // guards following
	buf  bytes.Buffer
	wake chan struct{} // closed and replaced on every Write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wake: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.wake)
	b.wake = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits up to d for re to match what was written and returns the
// first submatch (or the whole match without groups).
func (b *syncBuffer) waitFor(t testing.TB, re *regexp.Regexp, d time.Duration) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		wake := b.wake
		b.mu.Unlock()
		if m != nil {
			return m[len(m)-1]
		}
		select {
		case <-wake:
		case <-timer.C:
			t.Fatalf("no %q within %v in:\n%s", re, d, b.String())
		}
	}
}

var (
	reListen = regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	reStats  = regexp.MustCompile(`counters at http://(127\.0\.0\.1:\d+)/debug/vars`)
)

// running is a proxy started by startProxy.
type running struct {
	addr        string
	out, errOut *syncBuffer
	cancel      context.CancelFunc
	done        chan int // the exit status
}

// startProxy runs the program in this process with args plus -listen on
// a free port, waits until it listens, and stops it at cleanup.
func startProxy(t testing.TB, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: newSyncBuffer(), errOut: newSyncBuffer(), cancel: cancel, done: make(chan int, 1)}
	args = append([]string{"-listen", "127.0.0.1:0"}, args...)
	go func() { r.done <- run(ctx, args, r.out, r.errOut) }()
	t.Cleanup(func() {
		r.stop(t)
	})
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		// Match and take the wake channel under one lock: a write between
		// the two would replace the channel and its wake-up would be lost.
		r.out.mu.Lock()
		m := reListen.FindStringSubmatch(r.out.buf.String())
		wake := r.out.wake
		r.out.mu.Unlock()
		if m != nil {
			r.addr = m[1]
			return r
		}
		select {
		case <-wake:
		case code := <-r.done:
			r.done <- code
			t.Fatalf("run %q exited with %d before listening; stderr:\n%s", args, code, r.errOut.String())
		case <-timer.C:
			t.Fatalf("run %q did not listen within 30 s", args)
		}
	}
}

// stopWithin stops the proxy (stop) and checks that it exits with status
// 0 within limit.
func stopWithin(t testing.TB, p *running, limit time.Duration) {
	t.Helper()
	start := time.Now()
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if took := time.Since(start); took > limit {
		t.Errorf("shutdown took %v, want at most %v", took, limit)
	}
}

// stop cancels the proxy's context (the signal) and returns its exit
// status; it may be called more than once.
func (r *running) stop(t testing.TB) int {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("the proxy did not exit within 30 s of the signal; stderr:\n%s", r.errOut.String())
		return -1
	}
}

// httpClient returns a client that keeps no connection after the test.
func httpClient(t testing.TB, cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// serveHTTP runs h on 127.0.0.1 (over TLS with cert when it is not nil)
// until the test ends and returns its address.
func serveHTTP(t testing.TB, h http.Handler, cert *tls.Certificate) string {
	t.Helper()
	var ln net.Listener = testconn.Listen(t)
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// bodyHandler serves body at every path.
func bodyHandler(body []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

func randomBytes(t testing.TB, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// echoServer is a bev echo server on 127.0.0.1, as examples/echo: it
// returns every byte and closes once the client has finished and
// everything was sent back. Unlike examples/echo it stops reading while
// 256 KiB wait to be sent back, so that a client streaming without pause
// (streamLoad) does not pile up in its memory what it must then drain.
func echoServer(t testing.TB) string {
	t.Helper()
	const high, low = 256 << 10, 128 << 10
	base := actor.NewBase()
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
		closing := false // touched only by this socket's callbacks
		s.SetWatermark(actor.Write, low, high)
		s.SetCallbacks(actor.Callbacks{
			Read: func(s *actor.Session) {
				s.Output().MoveFrom(s.Input())
				if s.Output().Len() >= high {
					s.Disable(actor.Read)
				}
			},
			Write: func(s *actor.Session) { // the output is down to low
				if closing && s.Output().Len() == 0 {
					s.Close()
					return
				}
				if !closing && s.Enabled()&actor.Read == 0 {
					s.Enable(actor.Read)
				}
			},
			Event: func(s *actor.Session, ev actor.Event, err error) {
				switch {
				case ev&actor.Error != 0:
					s.Close()
				case ev&actor.EOF != 0:
					if s.Output().Len() == 0 {
						s.Close()
						return
					}
					closing = true
				}
			},
		})
		s.Enable(actor.Read | actor.Write)
	})
	if err != nil {
		base.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	return ln.Addr().String()
}

// testCert makes a self-signed certificate for localhost and 127.0.0.1,
// usable as its own CA, writes it and its key into dir and returns the
// paths and the loaded pair.
func testCert(t testing.TB, dir string) (certFile, keyFile string, cert tls.Certificate, pool *x509.CertPool) {
	t.Helper()
	c, err := testcert.New("localhost")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.TLS, c.Pool
}

// needTool returns the path of an external program, installing it with
// apt-get when it is missing and we are root (test.sh does the same for
// CI), or skips the test.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s is not installed (apt-get install %s)", name, pkg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", pkg}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("%s is not installed and apt-get %s failed: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is still missing after apt-get install %s", name, pkg)
	}
	return p
}

// sendAndReadBack writes msg to c and half-closes it on a goroutine of its
// own (the echo may not fit the socket buffers while nobody reads), reads
// until EOF, and waits for the writer. It returns what came back, the read
// error, and the write or half-close error.
func sendAndReadBack(c net.Conn, msg []byte) (got []byte, readErr, writeErr error) {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, readErr = io.ReadAll(c)
	return got, readErr, <-errc
}
