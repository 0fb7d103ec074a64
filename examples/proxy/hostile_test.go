package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
)

// The hostile cases of the proxy's promises: targets that hang, reset or
// never close, clients that reset, half-close at once or stall their TLS
// handshake by the dozen, descriptors running out on the dial, shutdown
// mid-dial, mid-handshake and mid-transfer, a huge API body, and the
// stats read while relays churn.

// hungTarget returns an address on 127.0.0.1 whose listener never
// accepts and whose accept queue is full, so that a connect there hangs
// (the SYN is dropped) until the dialer gives up. It is closed when the
// test ends.
func hungTarget(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // room for one connection
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue until a connect no longer completes.
	for i := 0; ; i++ {
		if i == 8 {
			t.Fatalf("the accept queue of %s never filled", addr)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// closedLineOf waits for connection id's closed line and returns it.
func closedLineOf(t *testing.T, p *running, id int) string {
	t.Helper()
	return p.errOut.waitFor(t, regexp.MustCompile(fmt.Sprintf(`(level=\w+ msg=closed conn=%d .*)`, id)), 30*time.Second)
}

// fields returns a log line's numeric fields.
func fields(line string) map[string]int64 {
	f := map[string]int64{}
	for _, m := range regexp.MustCompile(`(\w+)=(-?\d+)(?:\s|$)`).FindAllStringSubmatch(line, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		f[m[1]] = n
	}
	return f
}

// noneOpen waits until no connection is counted open and returns the
// stats then: a relay is counted open until just after its closed line
// is logged.
func noneOpen(t *testing.T, p *running) map[string]any {
	t.Helper()
	waitStats(t, p, "no connection open", func(v map[string]any) bool { return v["connections_open"] == 0.0 })
	return statsOf(t, p)
}

// dialProxy connects to the proxy with a 30 s deadline; the connection is
// closed when the test ends.
func dialProxy(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// TestConnectTimeout: a target whose connect hangs (its accept queue is
// full) is given up after -connect-timeout: the client is closed, the
// connection logged at WARN saying so, and counted as failed.
func TestConnectTimeout(t *testing.T) {
	p := startProxy(t, "-target", hungTarget(t), "-connect-timeout", "300ms", "-stats", "127.0.0.1:0")
	c := dialProxy(t, p.addr)
	checkConnectTimedOut(t, p, c)
}

// checkConnectTimedOut checks what the proxy's first relay does when its
// connect runs out of a 300ms -connect-timeout: the client c is closed
// within 5 s of the call, the connection is logged at WARN saying the
// connect timed out, and it is counted as failed, with none left open.
func checkConnectTimedOut(t *testing.T, p *running, c net.Conn) {
	t.Helper()
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the client was closed %v after a 300ms connect timeout", took)
	}
	c.Close() // the proxy's drain of the client waits for this EOF
	line := closedLineOf(t, p, 1)
	if !regexp.MustCompile(`^level=WARN .*cause="connect to 127\.0\.0\.1:\d+: timed out after 300ms"`).MatchString(line) {
		t.Errorf("closed line %q, want a WARN saying the connect timed out", line)
	}
	if v := noneOpen(t, p); v["connections_failed"] != 1.0 || v["connections_open"] != 0.0 {
		t.Errorf("stats after a connect timeout: failed %v, open %v; want 1, 0", v["connections_failed"], v["connections_open"])
	}
}

// TestDescribeConnectTimeout: a connect that ran out of -connect-timeout
// is logged as timed out whichever deadline error the dialer returns:
// ctx's, or its own (os.ErrDeadlineExceeded, "i/o timeout"), which net's
// dialer returns when the socket's deadline fires before ctx ends, as it
// did about one dial in three (TestConnectTimeout then logged "i/o
// timeout").
func TestDescribeConnectTimeout(t *testing.T) {
	r := newRelay(&proxy{cfg: &config{connectTimeout: 300 * time.Millisecond}, targetAddr: "127.0.0.1:9"}, 1)
	want := "connect to 127.0.0.1:9: timed out after 300ms"
	for _, err := range []error{
		&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded},
		fmt.Errorf("conn: connect: %w", context.DeadlineExceeded),
	} {
		if got := r.describe(&r.target, actor.Error, err); got.Error() != want {
			t.Errorf("describe(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestTargetResetsMidResponse: the target sends part of an answer, then
// resets. The client gets every byte the target sent, then the end of its
// stream; the log names the reset and counts the bytes exactly.
func TestTargetResetsMidResponse(t *testing.T) {
	part := randomBytes(t, 100<<10)
	request := []byte("GET / HTTP/1.0\r\n\r\n")
	partRead := make(chan struct{}) // closed once the client has read part
	target := testconn.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(c, make([]byte, len(request))); err != nil {
			return
		}
		c.Write(part)
		// The answer is in the proxy's socket before the reset: a
		// reset throws away what the receiver has not read yet, which
		// would make the count below a race. The proxy's client has
		// it once the client has read it.
		<-partRead
		c.(*net.TCPConn).SetLinger(0)
	})
	p := startProxy(t, "-target", target)
	c := dialProxy(t, p.addr)
	if _, err := c.Write(request); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(part))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, part) {
		t.Fatalf("read %v before the reset; want the %d bytes the target sent", err, len(part))
	}
	close(partRead)
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v after the target's reset; want the stream ended", n, err)
	}
	c.Close()
	line := closedLineOf(t, p, 1)
	f := fields(line)
	if !strings.Contains(line, `cause="target: `) || !strings.Contains(line, "reset by peer") {
		t.Errorf("closed line %q, want the target's reset as the cause", line)
	}
	if f["client_to_target"] != int64(len(request)) || f["target_to_client"] != int64(len(part)) || f["dropped_to_client"] != 0 {
		t.Errorf("closed line %q, want %d bytes up, %d down, nothing dropped", line, len(request), len(part))
	}
}

// TestTargetNeverCloses: the target answers and then neither sends nor
// closes. -idle-timeout closes the connection: the client has the whole
// answer, then the end of its stream (nothing was lost: no reset), and
// the log says idle with the exact counts.
func TestTargetNeverCloses(t *testing.T) {
	answer := randomBytes(t, 64<<10)
	request := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	target := testconn.Serve(t, func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, len(request))); err != nil {
			return
		}
		c.Write(answer)
		io.Copy(io.Discard, c) // until the proxy closes it
	})
	p := startProxy(t, "-target", target, "-idle-timeout", "300ms")
	c := dialProxy(t, p.addr)
	if _, err := c.Write(request); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("read %d bytes, %v; want the %d of the answer, then EOF", len(got), err, len(answer))
	}
	line := closedLineOf(t, p, 1)
	f := fields(line)
	if !strings.Contains(line, `cause="idle for 300ms"`) || f["client_to_target"] != int64(len(request)) || f["target_to_client"] != int64(len(answer)) || f["dropped_to_client"] != 0 {
		t.Errorf("closed line %q, want idle, %d bytes up, %d down, nothing dropped", line, len(request), len(answer))
	}
}

// TestClientHalfClosesAtOnce: a client that half-closes before sending a
// byte still gets the target's answer, which the target sends only once
// it has read EOF: the proxy relays the half-close, and the other
// direction goes on.
func TestClientHalfClosesAtOnce(t *testing.T) {
	answer := []byte("nothing asked, nothing withheld")
	target := testconn.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
			return
		}
		c.Write(answer)
	})
	p := startProxy(t, "-target", target)
	c := dialProxy(t, p.addr)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("after an immediate half-close read %q, %v; want %q, then EOF", got, err, answer)
	}
	f := fields(closedLineOf(t, p, 1))
	if f["client_to_target"] != 0 || f["target_to_client"] != int64(len(answer)) {
		t.Errorf("log counts %v, want 0 up and %d down", f, len(answer))
	}
}

// TestClientResetsBeforeConnect: a client sends a request and resets
// while the target's connect is still under way. The proxy must not hang
// or lose count: the connection is logged once, with the cause, and no
// connection stays open. The target is dialed (the proxy dials at
// accept); it must then get the client's bytes in order or nothing, and
// its side closed.
func TestClientResetsBeforeConnect(t *testing.T) {
	got := make(chan []byte, 1)
	target := testconn.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c) // ends with EOF or the proxy's reset
		got <- b
	})
	p := startProxy(t, "-target", target, "-stats", "127.0.0.1:0")
	c := dialProxy(t, p.addr)
	msg := []byte("a request never to be answered")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetLinger(0)
	c.Close()
	line := closedLineOf(t, p, 1)
	if !strings.Contains(line, `cause="client: `) {
		t.Errorf("closed line %q, want the client's reset as the cause", line)
	}
	select {
	case b := <-got:
		if !bytes.HasPrefix(msg, b) {
			t.Errorf("the target read %q, want a prefix of %q", b, msg)
		}
		if f := fields(line); f["client_to_target"] != int64(len(b)) {
			t.Errorf("the log says %d bytes went to the target, which read %d: %q", f["client_to_target"], len(b), line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the target's connection was never ended")
	}
	if v := noneOpen(t, p); v["connections_open"] != 0.0 {
		t.Errorf("connections_open = %v after the only client reset, want 0", v["connections_open"])
	}
}

// TestStalledHandshakesMany: 40 TLS clients stall in their handshake at
// once, with no -idle-timeout. The proxy keeps accepting and relaying
// others meanwhile, dials the target for none of the stalled ones, and
// closes each of them at the TLS handshake timeout
// (tlsconn.DefaultHandshakeTimeout): none holds its descriptor for good.
func TestStalledHandshakesMany(t *testing.T) {
	const stalled = 40
	certFile, keyFile, _, pool := testCert(t, t.TempDir())
	var ndials int // none expected but the good client's
	var mu sync.Mutex
	target := testconn.Serve(t, func(c net.Conn) {
		mu.Lock()
		ndials++
		mu.Unlock()
		io.Copy(c, c)
	})
	p := startProxy(t, "-target", target, "-tls-cert", certFile, "-tls-key", keyFile, "-idle-timeout", "0", "-stats", "127.0.0.1:0")
	start := time.Now()
	conns := make([]*net.TCPConn, stalled)
	for i := range conns {
		conns[i] = dialProxy(t, p.addr)
		if _, err := conns[i].Write([]byte{0x16, 0x03, 0x01}); err != nil { // a record header's start, then nothing
			t.Fatal(err)
		}
	}
	// A good client is relayed while they stall.
	raw := dialProxy(t, p.addr)
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	msg := []byte("through the crowd")
	if _, err := tc.Write(msg); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(tc, back); err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("a good TLS client among %d stalled ones got %q, %v; want %q", stalled, back, err, msg)
	}
	if v := statsOf(t, p); v["connections_open"] != float64(stalled+1) {
		t.Errorf("connections_open = %v with %d stalled handshakes and one relay, want %d", v["connections_open"], stalled, stalled+1)
	}
	tc.Close()
	// Each stalled one is closed at the handshake timeout.
	for i, c := range conns {
		if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, syscall.EAGAIN) || isTimeout(err) {
			t.Fatalf("stalled client %d: read %d, %v; want it closed by the handshake timeout", i, n, err)
		}
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("the stalled handshakes were closed after %v", took)
	}
	p.errOut.waitFor(t, regexp.MustCompile(fmt.Sprintf(`(?s)(?:msg=closed [^\n]*cause="client TLS handshake: [^\n]*\n.*){%d}`, stalled)), 10*time.Second)
	mu.Lock()
	defer mu.Unlock()
	if ndials != 1 {
		t.Errorf("the target was dialed %d times, want once (the good client's)", ndials)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestShutdownMidDial: the signal comes while a connection's target
// connect hangs (its accept queue is full) and a far longer
// -connect-timeout runs: the drain deadline cuts it, the client is
// closed, the log says why, and the proxy exits 0 within the deadline,
// not the connect timeout.
func TestShutdownMidDial(t *testing.T) {
	p := startProxy(t, "-target", hungTarget(t), "-connect-timeout", "60s", "-drain-timeout", "300ms", "-log-level", "DEBUG")
	c := dialProxy(t, p.addr)
	if _, err := c.Write([]byte("waiting for a target")); err != nil {
		t.Fatal(err)
	}
	p.errOut.waitFor(t, regexp.MustCompile(`msg=opened conn=1 `), 10*time.Second)
	stopWithin(t, p, 10*time.Second)
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes after the shutdown, want the connection closed", n)
	}
	line := closedLineOf(t, p, 1)
	if !strings.Contains(line, `cause="shutdown: drain timeout ran out"`) {
		t.Errorf("closed line %q, want the drain deadline as the cause", line)
	}
}

// TestShutdownMidHandshakeAndTransfer: the signal comes while one TLS
// client stalls in its handshake and another is mid-transfer. Both are
// closed at the drain deadline, each logged once, and the proxy exits 0.
func TestShutdownMidHandshakeAndTransfer(t *testing.T) {
	certFile, keyFile, _, pool := testCert(t, t.TempDir())
	p := startProxy(t, "-target", echoServer(t), "-tls-cert", certFile, "-tls-key", keyFile, "-drain-timeout", "300ms")
	stalled := dialProxy(t, p.addr)
	if _, err := stalled.Write([]byte{0x16, 0x03, 0x01}); err != nil {
		t.Fatal(err)
	}
	raw := dialProxy(t, p.addr)
	tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if _, err := tc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tc, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	stopWithin(t, p, 10*time.Second)
	if n, err := stalled.Read(make([]byte, 1)); err == nil {
		t.Errorf("the stalled client read %d bytes after the shutdown, want it closed", n)
	}
	if n, err := tc.Read(make([]byte, 1)); err == nil {
		t.Errorf("the relayed client read %d bytes after the shutdown, want it closed", n)
	}
	for id := 1; id <= 2; id++ {
		if line := closedLineOf(t, p, id); !strings.Contains(line, `cause="shutdown: drain timeout ran out"`) {
			t.Errorf("closed line %q, want the drain deadline as the cause", line)
		}
	}
	if n := strings.Count(p.errOut.String(), "msg=closed "); n != 2 {
		t.Errorf("%d closed lines for 2 connections:\n%s", n, p.errOut)
	}
}

// TestDialEMFILE: the target's dial fails for want of a descriptor (the
// accept took the last one). The client is closed, the connection logged
// at WARN with the cause and counted as failed, the proxy neither spins
// nor dies, and relays again once descriptors are free.
func TestDialEMFILE(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t), "-stats", "127.0.0.1:0")
	// No request is made to the stats server first: the descriptors its
	// connection frees as it closes, maybe after the limit is lowered,
	// would let the dial succeed. Its accept loop may meet EMFILE while
	// the limit is low, if it starts then, and net/http logs its
	// retries: harmless.
	_, port, _ := strings.Cut(p.addr, ":")
	portN, _ := strconv.Atoi(port)
	fd, restore := testconn.DialAtFDLimitLeaving(t, portN, 1)
	// The accept takes the one descriptor left; the dial finds none.
	p.errOut.waitFor(t, regexp.MustCompile(`msg=closed conn=1 `), 10*time.Second)
	restore()
	line := closedLineOf(t, p, 1)
	if !regexp.MustCompile(`^level=WARN .*cause=.*too many open files`).MatchString(line) {
		t.Errorf("closed line %q, want a WARN naming EMFILE", line)
	}
	tv := syscall.Timeval{Sec: 10}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if n, err := syscall.Read(fd, make([]byte, 1)); n > 0 || err == syscall.EAGAIN {
		t.Errorf("the client whose dial failed read %d, %v; want its connection closed", n, err)
	}
	if v := noneOpen(t, p); v["connections_failed"] != 1.0 || v["connections_open"] != 0.0 {
		t.Errorf("stats after a dial that met EMFILE: failed %v, open %v; want 1, 0", v["connections_failed"], v["connections_open"])
	}
	c := dialProxy(t, p.addr)
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "pong" {
		t.Fatalf("after EMFILE cleared, the echo through the proxy = %q, %v; want %q", got, err, "pong")
	}
}

// TestAPIHugeBody: a request body far over the API's 1 MiB bound is
// refused with 400 without being read whole, and the API goes on
// serving.
func TestAPIHugeBody(t *testing.T) {
	_, api := startAPIProxy(t)
	// A valid start, then 64 MiB of spaces inside a string: the decoder
	// stops at 1 MiB.
	const huge = 64 << 20
	body := io.MultiReader(strings.NewReader(`{"name":"`), &spaces{n: huge}, strings.NewReader(`","upstream":"127.0.0.1:1"}`))
	req, err := http.NewRequest("POST", "http://"+api+"/proxies", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient(t, nil).Do(req)
	if err == nil {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(data), "bad request body") {
			t.Errorf("a %d-byte body: %d %s; want 400, bad request body", huge, resp.StatusCode, data)
		}
	}
	// The server may close on the unread rest: then the client's write
	// fails, which is as good a refusal. Either way nothing was made.
	resp, err = http.Get("http://" + api + "/proxies")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(data)) != "{}" {
		t.Errorf("GET /proxies after the huge body: %d %s; want 200 {}", resp.StatusCode, data)
	}
}

// spaces reads as n spaces.
type spaces struct{ n int }

func (s *spaces) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	m := min(len(p), s.n)
	for i := range p[:m] {
		p[i] = ' '
	}
	s.n -= m
	return m, nil
}

// TestStatsWhileChurning reads -stats without pause while 8 clients
// open, use and close connections (the race detector watches the
// counters); once they are done the totals are exact.
func TestStatsWhileChurning(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t), "-stats", "127.0.0.1:0")
	const workers, each = 8, 15
	msg := randomBytes(t, 8<<10)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		// Each read is consistent with the one before: the totals only
		// grow, and no more are open than were accepted.
		var total, up, down float64
		for {
			select {
			case <-stop:
				return
			default:
			}
			v := statsOf(t, p)
			open, _ := v["connections_open"].(float64)
			t2, _ := v["connections_total"].(float64)
			u2, _ := v["bytes_client_to_target"].(float64)
			d2, _ := v["bytes_target_to_client"].(float64)
			if open < 0 || open > t2 || t2 < total || u2 < up || d2 < down || t2 > workers*each {
				t.Errorf("stats went from total %v, up %v, down %v to %v", total, up, down, v)
				return
			}
			total, up, down = t2, u2, d2
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				c, err := net.Dial("tcp", p.addr)
				if err != nil {
					t.Errorf("client %d/%d: %v", w, i, err)
					return
				}
				c.SetDeadline(time.Now().Add(30 * time.Second))
				got, err, werr := sendAndReadBack(c, msg)
				c.Close()
				if err != nil || werr != nil || !bytes.Equal(got, msg) {
					t.Errorf("client %d/%d: %d bytes back, %v, %v", w, i, len(got), err, werr)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	n := workers * each
	p.errOut.waitFor(t, regexp.MustCompile(fmt.Sprintf(`(?s)(?:msg=closed .*){%d}`, n)), 30*time.Second)
	v := noneOpen(t, p)
	if v["connections_total"] != float64(n) || v["connections_open"] != 0.0 ||
		v["bytes_client_to_target"] != float64(n*len(msg)) || v["bytes_target_to_client"] != float64(n*len(msg)) {
		t.Errorf("stats after %d echoed connections of %d bytes: %v", n, len(msg), v)
	}
}

// TestStalledClientCut: a client stops reading in the middle of a 16 MiB
// download. Once it has taken nothing for -idle-timeout the proxy cuts
// it: the client gets a reset, not a clean end, the log says the client
// took no bytes, counts what was dropped for it, and counts no more as
// sent than the client could have read.
func TestStalledClientCut(t *testing.T) {
	body := randomBytes(t, 16<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-idle-timeout", "500ms")
	c := dialProxy(t, p.addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1000)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more until the proxy has given up on it.
	line := closedLineOf(t, p, 1)
	n, err := readUntilError(c)
	n += int64(len(first))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a stalled client read %d bytes, then %v after the proxy gave up on it; want a reset", n, err)
	}
	f := fields(line)
	if !strings.Contains(line, `cause="client took no bytes for 500ms"`) || !strings.HasPrefix(line, "level=WARN ") {
		t.Errorf("closed line %q, want a WARN saying the client took no bytes", line)
	}
	if f["dropped_to_client"] <= 0 || f["target_to_client"] < n || f["target_to_client"]+f["dropped_to_client"] > int64(len(body))+1024 {
		t.Errorf("closed line %q after the client read %d bytes of a %d-byte body: want something dropped, at least what it read sent, and no more than the answer in all", line, n, len(body))
	}
}

// TestUpstreamTLSStalls: the target accepts the TCP connection but never
// answers the TLS handshake (-tls-upstream, through a TLS socket and
// through the pipeline filter). -connect-timeout bounds it: the client is
// closed, the connection logged at WARN as a failed connect, and counted.
func TestUpstreamTLSStalls(t *testing.T) {
	target := testconn.Serve(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	for _, mode := range []string{"socket", "filter"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-target", target, "-tls-upstream", "-insecure", "-connect-timeout", "300ms", "-stats", "127.0.0.1:0"}
			if mode == "filter" {
				args = append(args, "-tls-filter")
			}
			p := startProxy(t, args...)
			c := dialProxy(t, p.addr)
			if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			checkConnectTimedOut(t, p, c)
		})
	}
}

// TestClientResetsWhileDialing: a client sends a few bytes and resets
// while the target's connect hangs. The relay ends no later than
// -connect-timeout (its bytes cannot be delivered: no connection is left
// waiting for good), the bytes the proxy read are logged as dropped for
// the target, the client's reset is the cause, and nothing stays open.
func TestClientResetsWhileDialing(t *testing.T) {
	p := startProxy(t, "-target", hungTarget(t), "-connect-timeout", "1s", "-stats", "127.0.0.1:0")
	c := dialProxy(t, p.addr)
	msg := []byte("hello")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetLinger(0)
	c.Close()
	line := closedLineOf(t, p, 1)
	f := fields(line)
	if !strings.Contains(line, `cause="client: `) || f["client_to_target"] != 0 || (f["dropped_to_target"] != 0 && f["dropped_to_target"] != int64(len(msg))) {
		t.Errorf("closed line %q, want the client's reset as the cause, nothing sent and the %d bytes read (if any) dropped", line, len(msg))
	}
	m := regexp.MustCompile(` duration=(\S+) `).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("closed line %q has no duration", line)
	}
	if d, err := time.ParseDuration(m[1]); err != nil || d > 5*time.Second {
		t.Errorf("closed line %q: the relay outlived -connect-timeout 1s", line)
	}
	if v := noneOpen(t, p); v["connections_open"] != 0.0 {
		t.Errorf("connections_open = %v, want 0", v["connections_open"])
	}
}
