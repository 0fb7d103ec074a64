package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testconn"
)

// TestAcceptErrorRateLimit: a storm of accept errors makes one line per
// second, each saying how many it held back; a panic in the accept
// callback is logged at ERROR.
func TestAcceptErrorRateLimit(t *testing.T) {
	buf := newSyncBuffer()
	l := newRateLog(slog.New(slog.NewTextHandler(buf, nil)), time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	emfile := fmt.Errorf("conn: accept (retrying in 5ms): %w", syscall.EMFILE)
	// 2.5 s of errors every 5 ms: lines at 0 s, 1 s and 2 s.
	for range 500 {
		l.acceptError(emfile)
		now = now.Add(5 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("500 errors over 2.5 s made %d lines, want 3:\n%s", len(lines), buf)
	}
	for i, want := range []string{"suppressed=0", "suppressed=199", "suppressed=199"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], "too many open files") || !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want a WARN with the error and %s", i, lines[i], want)
		}
	}
	now = now.Add(time.Second)
	l.acceptError(fmt.Errorf("%w: %w", conn.ErrAcceptPanic, &actor.PanicError{Value: "boom"}))
	if !regexp.MustCompile(`level=ERROR msg="accept callback panicked.*boom.* suppressed=99`).MatchString(buf.String()) {
		t.Errorf("no ERROR line for the panic in:\n%s", buf)
	}
}

// TestProxyEMFILE runs the proxy's listener out of descriptors for real
// (RLIMIT_NOFILE lowered to the lowest free descriptor, as conn's
// TestListenerEMFILE): the proxy logs the accept error, and relays
// connections once descriptors are free again.
//
// The connection that waited in the backlog may be accepted while the
// limit is still low, when some other descriptor of the test process
// happens to close: its target dial then fails for want of a descriptor
// and the proxy closes it, which is right. So it must end one way or the
// other, never hang, and a connection made afterwards must be relayed.
func TestProxyEMFILE(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t))
	_, port, _ := strings.Cut(p.addr, ":")
	var portN int
	fmt.Sscan(port, &portN)
	fd, restore := testconn.DialAtFDLimit(t, portN)
	p.errOut.waitFor(t, regexp.MustCompile(`level=WARN msg="accept failed, retrying" err=".*too many open files`), 10*time.Second)
	restore()
	// The waiting connection: echoed, or closed if it was accepted too
	// early; each read waits at most 10 s, then fails.
	tv := syscall.Timeval{Sec: 10}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	if _, err := syscall.Write(fd, []byte("ping")); err == nil {
		got := make([]byte, 4)
		n := 0
		for n < len(got) {
			m, err := syscall.Read(fd, got[n:])
			if err == syscall.EAGAIN {
				t.Fatalf("the connection that waited for a descriptor neither echoed nor ended within 10 s (got %q)", got[:n])
			}
			if err != nil || m == 0 {
				break // closed: its target dial met the low limit
			}
			n += m
		}
		if n == len(got) && string(got) != "ping" {
			t.Errorf("the connection that waited for a descriptor echoed %q, want %q", got, "ping")
		}
	}
	// With descriptors free again, a new connection is relayed.
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "pong" {
		t.Fatalf("after EMFILE cleared, the echo through the proxy = %q, %v; want %q", got, err, "pong")
	}
}
