package main

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// TestBackpressureStalledClient: a 16 MiB download through the proxy, over
// real sockets, to a client that stops reading after 1000 bytes. The
// target must be paused with the client's output at maxOutput plus at
// most one read of the target: the bytes the target's read callback
// moved must not pile up where the pause cannot see them (issue 14: with
// -rate 1MiB they reached 4.3 MB, and 48 MiB under load). Plain and TLS
// clients, with and without -rate.
func TestBackpressureStalledClient(t *testing.T) {
	certFile, keyFile, _, pool := testCert(t, t.TempDir())
	body := randomBytes(t, 16<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"plain/rate", []string{"-rate", "1MiB"}},
		{"tls", []string{"-tls-cert", certFile, "-tls-key", keyFile}},
		{"tls/rate", []string{"-tls-cert", certFile, "-tls-key", keyFile, "-rate", "1MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tlsCfg *tls.Config
			if len(tc.args) > 0 && tc.args[0] == "-tls-cert" {
				tlsCfg = &tls.Config{RootCAs: pool, ServerName: "localhost"}
			}
			stalledClient(t, target, tlsCfg, tc.args...)
		})
	}
}

func stalledClient(t *testing.T, target string, tlsCfg *tls.Config, args ...string) {
	cfg, err := parseFlags(append([]string{"-listen", "127.0.0.1:0", "-target", target}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProxy(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.shutdown(errShutdown)
	paused := make(chan struct{}, 1)
	p.mu.Lock() // accept's add takes it before any relay runs
	p.onPause = func() {
		select {
		case paused <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()

	// A small receive buffer, so that the kernel takes little of what
	// the proxy writes once the client stops reading.
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	raw, err := d.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := raw
	if tlsCfg != nil {
		c = tls.Client(raw, tlsCfg)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing more.
	select {
	case <-paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the target was never paused although the client reads nothing")
	}
	p.mu.Lock()
	var r *relay
	for r = range p.open {
	}
	p.mu.Unlock()
	if r == nil {
		t.Fatal("no relay open")
	}
	// What was on its way to the client's actor when the target paused
	// has landed once the actor runs this Do, where OutputLen is exact
	// (bytes handed to the socket and not yet written included).
	var held int
	if err := r.client.b.Do(func(s *actor.Session) { held = max(s.Output().Len(), r.client.b.OutputLen()) }); err != nil {
		t.Fatal(err)
	}
	limit := maxOutput + r.target.b.MaxRead()
	// The gauge reads OutputLen right after each move, which may still
	// count what the client's actor wrote since it last published: at
	// most one turn of its writes (16 direct writes), and never near
	// another maxOutput unless the pause came late.
	peakLimit := limit + min(16*r.client.b.MaxWrite(), maxOutput/2)
	peak := int(p.stats.peakHeld.Load())
	t.Logf("paused with %d bytes in the client's output (peak %d); %d moved", held, peak, r.target.moved.Load())
	if held > limit {
		t.Errorf("paused, the client's output holds %d bytes, want at most %d", held, limit)
	}
	if peak > peakLimit || peak < maxOutput {
		t.Errorf("the client's output held up to %d bytes, want %d to %d", peak, maxOutput, peakLimit)
	}
}
