package main

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testconn"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A fault is what a test echo server does to the stream it echoes: it
// gets each read's bytes and their offset in the connection, and returns
// what to send back, or stop to close the connection instead.
type fault func(off int64, p []byte) (out []byte, stop bool)

// honest echoes every byte.
func honest(_ int64, p []byte) ([]byte, bool) { return p, false }

// at returns a fault that applies f to the byte at offset k alone.
func at(k int64, f func(p []byte, i int) []byte) fault {
	return func(off int64, p []byte) ([]byte, bool) {
		if i := k - off; i >= 0 && i < int64(len(p)) {
			return f(p, int(i)), false
		}
		return p, false
	}
}

// serveEcho starts an echo server on loopback that applies f to what it
// echoes, for the test's lifetime.
func serveEcho(t *testing.T, f fault) string {
	t.Helper()
	return testconn.Serve(t, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		var off int64
		for {
			n, err := c.Read(buf)
			if n > 0 {
				out, stop := f(off, buf[:n])
				if stop {
					return
				}
				off += int64(n)
				if _, werr := c.Write(out); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// load runs loadgen's stream or pingpong mode against addr on n
// connections for a short window and returns the run and its result.
func load(t *testing.T, addr, mode string, n, size int) (*run, *result) {
	t.Helper()
	r := &run{addr: addr, size: size, stop: make(chan struct{})}
	res := &result{Mode: mode, Conns: n, Size: size}
	done := make(chan struct{})
	go func() {
		defer close(done)
		loaded(r, res, mode == "stream", n, 0, 50*time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(drain + 10*time.Second):
		t.Fatal("the run did not end within its drain time")
	}
	return r, res
}

// TestHonestEchoPasses: an echo that returns every byte gives no error and
// counts what came back.
func TestHonestEchoPasses(t *testing.T) {
	for _, tc := range []struct {
		mode string
		size int
	}{{"stream", 64 << 10}, {"stream", 4 << 10}, {"pingpong", 64}} {
		t.Run(tc.mode, func(t *testing.T) {
			r, res := load(t, serveEcho(t, honest), tc.mode, 3, tc.size)
			if r.errs.Load() != 0 {
				t.Fatalf("%d errors, first %q, want none", r.errs.Load(), r.firstErr)
			}
			if r.echoed.Load() == 0 || res.Bytes == 0 {
				t.Fatalf("echoed %d in the run, %d in the window, want both > 0", r.echoed.Load(), res.Bytes)
			}
			if tc.mode == "pingpong" && (r.trips.Load() == 0 || res.P50us <= 0 || res.P99us < res.P50us) {
				t.Fatalf("round trips %d, p50 %v µs, p99 %v µs: want round trips and ordered latencies", r.trips.Load(), res.P50us, res.P99us)
			}
		})
	}
}

// TestFaultsAreCaught: every way an echo can go wrong fails the run, and
// a changed or lost byte is named by its offset.
func TestFaultsAreCaught(t *testing.T) {
	// The faults hit byte k: for a stream past its first read and first
	// message, for a ping-pong in its 16th round trip.
	flip := func(k int64) fault { return at(k, func(p []byte, i int) []byte { p[i] ^= 1; return p }) }
	drop := func(k int64) fault { return at(k, func(p []byte, i int) []byte { return append(p[:i:i], p[i+1:]...) }) }
	repeat := func(k int64) fault {
		return at(k, func(p []byte, i int) []byte { return append(p[:i+1:i+1], p[i:]...) })
	}
	short := func(k int64) fault {
		return func(off int64, p []byte) ([]byte, bool) { return p, off+int64(len(p)) > k }
	}
	for _, tc := range []struct {
		name, mode string
		size       int
		f          fault
		want       string
	}{
		{"stream/changed", "stream", 64 << 10, flip(100_000), "echo differs from what was sent at byte 100000"},
		{"stream/lost", "stream", 64 << 10, drop(100_000), "echo differs from what was sent at byte 100000"},
		{"stream/repeated", "stream", 64 << 10, repeat(100_000), "echo differs from what was sent at byte 100001"},
		{"stream/cut", "stream", 64 << 10, short(100_000), ""},
		{"pingpong/changed", "pingpong", 64, flip(1000), "echo differs from what was sent at byte 40 of a message"},
		{"pingpong/repeated", "pingpong", 64, repeat(1000), ""},
		{"pingpong/cut", "pingpong", 64, short(1000), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := load(t, serveEcho(t, tc.f), tc.mode, 1, tc.size)
			if r.errs.Load() == 0 {
				t.Fatalf("no error, want the fault caught (echoed %d bytes)", r.echoed.Load())
			}
			if !strings.Contains(r.firstErr, tc.want) {
				t.Fatalf("first error %q, want it to contain %q", r.firstErr, tc.want)
			}
		})
	}
}

// TestCrossedConnectionsAreCaught: a server that answers one connection
// with another's bytes fails the run, since each connection's pattern is
// its own.
func TestCrossedConnectionsAreCaught(t *testing.T) {
	a, b := pattern(0, 64), pattern(1, 64)
	if string(a[:64]) == string(b[:64]) {
		t.Fatal("connections 0 and 1 start with the same pattern")
	}
	var mu sync.Mutex
	var first []byte // the first message the server saw, on whichever connection
	swap := func(off int64, p []byte) ([]byte, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = append([]byte(nil), p...)
			return p, false
		}
		if off == 0 && string(p) != string(first) {
			return first, false // the other connection's first message
		}
		return p, false
	}
	r, _ := load(t, serveEcho(t, swap), "pingpong", 2, 64)
	if r.errs.Load() == 0 {
		t.Fatal("no error, want a connection answered with the other's bytes caught")
	}
}

// TestUnreachableServerFails: a run against a port nobody listens on
// fails at once with the dial's error.
func TestUnreachableServerFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r, _ := load(t, addr, "stream", 1, 64)
	if r.errs.Load() == 0 || !strings.Contains(r.firstErr, "dial 0") {
		t.Fatalf("errors %d, first %q: want the dial's failure", r.errs.Load(), r.firstErr)
	}
}
