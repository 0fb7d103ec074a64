// Package testkit holds the helpers bev's tests share that know nothing of
// bev: bounded waits on channels, wake-up signals, the test byte streams,
// a watchdog for a run that may hang (Within) and the bookkeeping of a
// run under it (Run, which the model-based fuzz targets embed), draining
// a buffer and checking what an example program prints. It imports no
// bev package, so every package's tests can use it, package actor's
// internal tests included; the helpers that need package actor are in
// internal/testbev, and real loopback connections in internal/testconn.
package testkit

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"time"
)

// WaitTime bounds every wait in bev's tests. It is far above what a
// healthy run needs, even on a loaded machine, so reaching it means a
// hang, not a slow machine.
const WaitTime = 20 * time.Second

// Recv waits for a value on c and returns it; what names the value in the
// failure message. A closed channel returns its zero value at once, so
// Recv also waits for a channel to be closed. If nothing comes within
// WaitTime it fails the test with t.Fatalf, and so must be called from
// the goroutine running the test.
func Recv[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(WaitTime)
	defer timer.Stop()
	select {
	case v := <-c:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", WaitTime, what)
		var zero T
		return zero
	}
}

// RecvAll receives chunks from c until it is closed and returns them
// joined; what names the channel in the failure message. If c is not
// closed within WaitTime it fails the test with t.Fatalf, saying how much
// came, and so must be called from the goroutine running the test.
func RecvAll(t testing.TB, c <-chan []byte, what string) []byte {
	t.Helper()
	timer := time.NewTimer(WaitTime)
	defer timer.Stop()
	var got []byte
	for {
		select {
		case chunk, ok := <-c:
			if !ok {
				return got
			}
			got = append(got, chunk...)
		case <-timer.C:
			t.Fatalf("%s not closed after %v; %d bytes received: %q", what, WaitTime, len(got), got)
			return got
		}
	}
}

// Pending returns what c holds now, in order, without waiting for more.
func Pending[T any](c <-chan T) []T {
	var got []T
	for {
		select {
		case v := <-c:
			got = append(got, v)
		default:
			return got
		}
	}
}

// Signal sends on c without blocking, for a channel of capacity 1 used as
// a wake-up: if a wake-up is already pending, it is enough and Signal
// does nothing.
func Signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// patternPeriod is the period of the test stream: a prime, so that no
// power-of-two chunk size or buffer size is a multiple of it.
const patternPeriod = 251

// PatternByte returns byte k of test stream id: (k + 7*id) mod 251. The
// period is a prime, so a stream in which a chunk of any power-of-two
// size is lost, repeated or misplaced no longer matches, and streams with
// different ids differ at every offset unless the ids differ by a
// multiple of 251.
func PatternByte(id, k int) byte { return byte((k + 7*id) % patternPeriod) }

// Pattern returns the first n bytes of test stream 0, the bytes most
// tests write and expect back.
func Pattern(n int) []byte { return PatternAt(0, 0, n) }

// PatternAt returns bytes [off, off+n) of test stream id (see
// PatternByte), for tests that run several streams at once or send one
// in pieces.
func PatternAt(id, off, n int) []byte { return streamAt(PatternByte, id, off, n) }

// PatternMismatch returns the offset in stream id of the first byte of
// got that differs from the stream, got standing at offset off; it
// returns -1 if every byte matches.
func PatternMismatch(id, off int, got []byte) int { return streamMismatch(PatternByte, id, off, got) }

// UniqueByte returns byte k of aperiodic stream id, for tests that must
// catch a lost or repeated run of any length (the fuzzers' models):
// unlike PatternByte's stream it has no period, so no such run lines up
// with the stream again.
func UniqueByte(id, k int) byte {
	x := uint64(k)*0x9e3779b97f4a7c15 + uint64(id+1)*0xd1b54a32d192ed03
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	return byte(x >> 56)
}

// UniqueAt returns bytes [off, off+n) of aperiodic stream id (see
// UniqueByte).
func UniqueAt(id, off, n int) []byte { return streamAt(UniqueByte, id, off, n) }

// UniqueMismatch returns the offset in aperiodic stream id (see
// UniqueByte) of the first byte of got that differs from the stream, got
// standing at offset off; it returns -1 if every byte matches.
func UniqueMismatch(id, off int, got []byte) int { return streamMismatch(UniqueByte, id, off, got) }

// streamAt returns bytes [off, off+n) of stream id, whose byte k is
// byteAt(id, k).
func streamAt(byteAt func(id, k int) byte, id, off, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byteAt(id, off+i)
	}
	return p
}

// streamMismatch returns the offset in stream id, whose byte k is
// byteAt(id, k), of the first byte of got that differs from it, got
// standing at offset off; it returns -1 if every byte matches.
func streamMismatch(byteAt func(id, k int) byte, id, off int, got []byte) int {
	for i, c := range got {
		if c != byteAt(id, off+i) {
			return off + i
		}
	}
	return -1
}

// Closed reports, without waiting, whether c is closed (or holds a
// value, which a closed-once signal channel never does).
func Closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Within runs run on a goroutine of its own and waits, at most limit,
// for it to return. If it has not by then, Within fails the test with
// t.Fatalf, saying where run is (hung's answer, asked for only then) and
// giving every goroutine's stack; the goroutine is left to the failed
// test. Like Recv it must be called from the goroutine running the test.
func Within(t testing.TB, limit time.Duration, run func(), hung func() string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run()
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("hung for %v in %s\ngoroutines:\n%s", limit, hung(), AllStacks())
	}
}

// AllStacks returns the stacks of every goroutine, for the message of a
// test that found a hang.
func AllStacks() string {
	buf := make([]byte, 4<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// Buffer is what DrainAll empties: an actor.Buffer or a bytes.Buffer.
type Buffer interface {
	Len() int
	io.Reader
}

// DrainAll removes every byte from buf and returns them in a fresh slice.
// A read error is reported with t.Errorf (which is safe from a callback's
// goroutine), and what was read before it is returned.
func DrainAll(t testing.TB, buf Buffer) []byte {
	t.Helper()
	p := make([]byte, buf.Len())
	n, err := io.ReadFull(buf, p)
	if err != nil && len(p) > 0 {
		t.Errorf("draining %d buffered bytes: read %d, %v", len(p), n, err)
	}
	return p[:n]
}

// Output calls run, as an example program's main does, with a buffer for
// its output, and returns what it printed. An error from run fails the
// test with t.Fatalf.
func Output(t testing.TB, run func(out io.Writer) error) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run() = %v; it printed %q", err, out.String())
	}
	return out.String()
}

// CheckOutput calls run as Output does and fails the test with t.Errorf
// unless it printed exactly want.
func CheckOutput(t testing.TB, run func(out io.Writer) error, want string) {
	t.Helper()
	if got := Output(t, run); got != want {
		t.Errorf("run() printed %q, want %q", got, want)
	}
}
