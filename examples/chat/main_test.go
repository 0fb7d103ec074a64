package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startChat runs the chat on a free port and returns its address; the
// server stops when the test ends.
func startChat(t *testing.T, maxQueue int) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrC := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, "127.0.0.1:0", maxQueue, slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(a net.Addr) { addrC <- a.String() })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run() = %v", err)
		}
	})
	select {
	case a := <-addrC:
		return a
	case err := <-done:
		t.Fatalf("run() = %v before listening", err)
	case <-time.After(10 * time.Second):
		t.Fatal("chat did not start")
	}
	return ""
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// waitJoined sends a line from each client until every other client has
// heard it, proving all of them are members.
func TestBroadcast(t *testing.T) {
	addr := startChat(t, 1<<20)
	a, b, c := dial(t, addr), dial(t, addr), dial(t, addr)
	rb, rc := bufio.NewReader(b), bufio.NewReader(c)
	// The hub learns of a member when its connection is accepted; a ping
	// from each proves the others are in.
	// A ping sent before its hearer joined is lost, so ping until heard.
	ping(t, b, c, rc)
	ping(t, c, b, rb)
	if _, err := a.Write([]byte("hello, ")); err != nil { // half a line first
		t.Fatal(err)
	}
	if _, err := a.Write([]byte("everyone\n")); err != nil {
		t.Fatal(err)
	}
	want := a.LocalAddr().String() + ": hello, everyone\n"
	for i, r := range []*bufio.Reader{rb, rc} {
		line, err := r.ReadString('\n')
		for err == nil && strings.HasSuffix(line, ": ping\n") { // a's join may lag the pings
			line, err = r.ReadString('\n')
		}
		if err != nil || line != want {
			t.Errorf("member %d read %q, %v; want %q", i, line, err, want)
		}
	}
}

// A member that stops reading is disconnected once its backlog passes
// -max-queue, and a member that keeps up goes on receiving.
func TestSlowMemberDisconnected(t *testing.T) {
	addr := startChat(t, 64<<10)
	talker, fast := dial(t, addr), dial(t, addr)
	// The slow member never reads, and its receive buffer is made small
	// before it connects, so that the kernel does not absorb the flood.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	slow, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.SetDeadline(time.Now().Add(20 * time.Second))
	rf := bufio.NewReader(fast)
	// Everyone must have joined before the flood: a ping from fast that
	// talker hears, and one from talker that fast hears.
	ping(t, fast, talker, bufio.NewReader(talker))
	ping(t, talker, fast, rf)
	// Skip the extra pings fast may have queued while talker joined.
	for fast.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); ; {
		if _, err := rf.ReadString('\n'); err != nil {
			break
		}
	}
	fast.SetReadDeadline(time.Now().Add(20 * time.Second))
	rf = bufio.NewReader(fast)
	// 8 MiB in lockstep with the fast member, so only the slow member falls
	// behind; that passes the kernel's socket buffers (4 MiB at most here)
	// and the 64 KiB queue.
	line := []byte(strings.Repeat("x", 1000) + "\n")
	const rounds, perRound = 512, 16 // 16 KiB a round: far below the fast member's 64 KiB
	for range rounds {
		for range perRound {
			if _, err := talker.Write(line); err != nil {
				t.Fatalf("talker write: %v", err)
			}
		}
		for range perRound {
			if _, err := rf.ReadString('\n'); err != nil {
				t.Fatalf("the fast member lost its connection: %v", err)
			}
		}
	}
	// The slow member now reads what the kernel held for it, then EOF.
	if _, err := io.Copy(io.Discard, slow); err != nil {
		t.Fatalf("the slow member was not disconnected: %v", err)
	}
}

// ping sends "ping" from one member until another hears it, proving both
// have joined; bounded in count and time.
func ping(t *testing.T, from, to net.Conn, r *bufio.Reader) {
	t.Helper()
	defer to.SetReadDeadline(time.Now().Add(20 * time.Second))
	for range 100 {
		if _, err := from.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		to.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		line, err := r.ReadString('\n')
		if err == nil && strings.HasSuffix(line, ": ping\n") {
			return
		}
		if err != nil && !os.IsTimeout(err) {
			t.Fatalf("ping: %v", err)
		}
	}
	t.Fatal("ping: never heard; the members did not join")
}
