package pipeline_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// linkKinds are the transports every behaviour test runs over: an actor
// pair and loopback TCP.
var linkKinds = []string{"pair", "tcp"}

// newLink returns two connected bufferevents of the given kind: the ends
// of a pair made with opts, or both sides of a loopback TCP connection
// with CloseOnFree|opts.
func newLink(t testing.TB, base *actor.Base, kind string, opts actor.Option) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	switch kind {
	case "pair":
		a, b, err := actor.NewPair(base, opts)
		if err != nil {
			t.Fatalf("NewPair = %v", err)
		}
		return a, b
	case "tcp":
		c1, c2 := testconn.Pair(t, "tcp")
		a, err := actor.New(base, c1, actor.CloseOnFree|opts)
		if err != nil {
			t.Fatalf("New(tcp) = %v", err)
		}
		b, err := actor.New(base, c2, actor.CloseOnFree|opts)
		if err != nil {
			t.Fatalf("New(tcp) = %v", err)
		}
		return a, b
	}
	t.Fatalf("unknown link kind %q", kind)
	return nil, nil
}

// closeAll closes bufferevents and reports unexpected errors.
func closeAll(t testing.TB, bs ...*actor.Bufferevent) {
	t.Helper()
	for _, b := range bs {
		if b == nil {
			continue
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	}
}

const benchChunk = 16 << 10

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The fuzz tests follow one shape: seed with bytes from our own encoder,
// decode the fuzzed input in pieces and under a limit (both fuzzed; drive
// fails a call that puts more than its limit out), check the outcome
// against a reference that reads the input whole (the line and frame
// rules spelled out plainly, or the standard library) with any error
// wrapping the package's sentinels, and on success require that
// re-encoding succeeds and decodes to the same bytes.

func fuzzShape(chunk, limit uint8) (int, int) {
	l := int(limit)
	if l == 0 {
		l = -1
	}
	return int(chunk) + 1, l
}

// stdDecompress decompresses with the standard library, failing the test
// on an error.
func stdDecompress(t testing.TB, f pipeline.Format, p []byte) []byte {
	t.Helper()
	out, err := stdDecompressErr(f, p)
	if err != nil {
		t.Fatalf("standard %v reader: %v", f, err)
	}
	return out
}

func stdDecompressErr(f pipeline.Format, p []byte) ([]byte, error) {
	var r io.Reader
	var err error
	switch f {
	case pipeline.FormatFlate:
		r = flate.NewReader(bytes.NewReader(p))
	case pipeline.FormatZlib:
		r, err = zlib.NewReader(bytes.NewReader(p))
	case pipeline.FormatGzip:
		r, err = gzip.NewReader(bytes.NewReader(p))
	}
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// eventLog records a bufferevent's events from its event callback.
type eventLog struct {
	c chan actor.EventInfo
}

func newEventLog() *eventLog { return &eventLog{c: make(chan actor.EventInfo, 64)} }

func (l *eventLog) callback(s *actor.Session, ev actor.Event, err error) {
	l.c <- actor.EventInfo{Event: ev, Err: err}
}

// drain returns the events logged so far, taking them from the log.
func (l *eventLog) drain() []actor.EventInfo { return testkit.Pending(l.c) }
