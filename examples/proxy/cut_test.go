package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testconn"
)

// dialClient connects to the proxy, over TLS when tlsOn. It returns the stream to use and
// the TCP connection under it. cert is the proxy's certificate, trusted
// as its own CA.
func dialClient(t *testing.T, addr string, tlsOn bool, cert tls.Certificate) (io.ReadWriter, *net.TCPConn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	raw := c.(*net.TCPConn)
	raw.SetDeadline(time.Now().Add(60 * time.Second))
	if !tlsOn {
		return raw, raw
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tc := tls.Client(raw, &tls.Config{ServerName: "localhost", RootCAs: pool})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with the proxy: %v", err)
	}
	return tc, raw
}

// readUntilError reads c until an error and returns the byte count and
// the error.
func readUntilError(c io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		m, err := c.Read(buf)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

// closedLine waits for the connection's log line and returns its numeric
// fields.
func closedLine(t *testing.T, p *running) map[string]int64 {
	t.Helper()
	line := p.errOut.waitFor(t, regexp.MustCompile(`(msg=closed conn=1 .*)`), 30*time.Second)
	f := map[string]int64{}
	for _, m := range regexp.MustCompile(`(\w+)=(-?\d+)(?:\s|$)`).FindAllStringSubmatch(line, -1) {
		n, _ := strconv.ParseInt(m[2], 10, 64)
		f[m[1]] = n
	}
	return f
}

// TestClientShutdownMidDownload: a client downloading 8 MiB ends its
// side with a TCP shutdown right after its request.
//
// Over TLS that shutdown comes without close_notify: the proxy takes it
// as a failed stream and throws away what the target still sends. The
// client must not then get a clean close_notify, which would make the
// truncated download look whole: it gets a reset, and the log says how
// many bytes were dropped for it.
//
// Over plain TCP the shutdown is a clean half-close: the client gets
// every byte, then EOF, and nothing is dropped.
func TestClientShutdownMidDownload(t *testing.T) {
	certFile, keyFile, cert, _ := testCert(t, t.TempDir())
	body := randomBytes(t, 8<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	for _, mode := range []string{"tls", "plain"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-target", target}
			if mode == "tls" {
				args = append(args, "-tls-cert", certFile, "-tls-key", keyFile)
			}
			p := startProxy(t, args...)
			c, raw := dialClient(t, p.addr, mode == "tls", cert)
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if err := raw.CloseWrite(); err != nil { // a TCP shutdown: no close_notify
				t.Fatal(err)
			}
			n, err := readUntilError(c)
			f := closedLine(t, p)
			t.Logf("client read %d bytes then %v; log %v", n, err, f)
			if got := f["target_to_client"]; got < n {
				t.Errorf("the log says %d bytes went to the client, which read %d", got, n)
			}
			if mode == "plain" {
				if n <= int64(len(body)) || err != io.EOF || f["dropped_to_client"] != 0 {
					t.Errorf("a plain client that half-closed got %d bytes (the body is %d), then %v; log %v; want everything, then EOF, nothing dropped", n, len(body), err, f)
				}
				return
			}
			if n < int64(len(body)) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the client got %d of the %d-byte body, then %v; want a reset so that the truncation shows (not a clean close_notify)", n, len(body), err)
			}
			if n < int64(len(body)) && f["dropped_to_client"] == 0 {
				t.Errorf("the log says nothing was dropped for the client, which got %d of %d bytes:\n%s", n, len(body), p.errOut)
			}
		})
	}
}

// TestCutAtDrainDeadline: the shutdown deadline cuts a rate-limited
// download while the proxy still holds bytes for the client. The client
// (plain TCP and TLS) gets a reset, not a clean end; the log counts what
// was written to it, close to what it read (the bytes left in the
// proxy's output are dropped, not counted as sent), and says how many
// were dropped.
func TestCutAtDrainDeadline(t *testing.T) {
	certFile, keyFile, cert, _ := testCert(t, t.TempDir())
	body := randomBytes(t, 4<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	for _, mode := range []string{"plain", "tls"} {
		t.Run(mode, func(t *testing.T) {
			args := []string{"-target", target, "-rate", "1MiB", "-drain-timeout", "700ms"}
			if mode == "tls" {
				args = append(args, "-tls-cert", certFile, "-tls-key", keyFile)
			}
			p := startProxy(t, args...)
			c, _ := dialClient(t, p.addr, mode == "tls", cert)
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			first := make([]byte, 1000)
			if _, err := io.ReadFull(c, first); err != nil {
				t.Fatal(err)
			}
			p.cancel() // the signal
			n, err := readUntilError(c)
			n += int64(len(first))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("after the drain deadline the client read %d bytes, then %v; want a reset", n, err)
			}
			if n >= int64(len(body)) {
				t.Fatalf("the client got the whole body (%d bytes): the deadline cut nothing", n)
			}
			f := closedLine(t, p)
			if f["dropped_to_client"] <= 0 {
				t.Errorf("the log says nothing was dropped for the client:\n%s", p.errOut)
			}
			// What the proxy held for the client (256 KiB to 512 KiB at
			// the backpressure marks) is not counted as sent; what the
			// client read differs only by what was in flight, at most a
			// tick of the rate (100 KiB) and socket buffers.
			if d := f["target_to_client"] - n; d < -200<<10 || d > 200<<10 {
				t.Errorf("the log says %d bytes went to the client, which read %d", f["target_to_client"], n)
			}
			if code := p.stop(t); code != 0 {
				t.Errorf("exit status %d, want 0", code)
			}
		})
	}
}

// TestStalledHandshake: a TLS client that stops in the middle of its
// handshake costs no connection to the target (the proxy dials only once
// the handshake is done), and its end is logged as the handshake's, not
// as a client that "took no bytes".
func TestStalledHandshake(t *testing.T) {
	certFile, keyFile, _, _ := testCert(t, t.TempDir())
	ln := testconn.Listen(t)
	p := startProxy(t, "-target", ln.Addr().String(), "-tls-cert", certFile, "-tls-key", keyFile, "-idle-timeout", "300ms")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// The first bytes of a TLS record header, then nothing.
	if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a stalled handshake, want it closed", n)
	}
	line := p.errOut.waitFor(t, regexp.MustCompile(`(msg=closed conn=1 .*)`), 10*time.Second)
	if !regexp.MustCompile(`cause="client TLS handshake: `).MatchString(line) {
		t.Errorf("closed line %q, want the cause to be the client's TLS handshake", line)
	}
	// A dial made at accept would be waiting in the backlog by now.
	ln.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if up, err := ln.Accept(); err == nil {
		up.Close()
		t.Errorf("the proxy dialed the target for a client whose TLS handshake never finished")
	}
}
