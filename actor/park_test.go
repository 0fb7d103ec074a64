package actor_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// Tests of park.go: a socket's actor reads its socket itself, is kicked
// out of that wait by posts, and starts the reader loop when it must wait
// for something else.

// A socket's actor reads its socket itself while it has nothing else to
// wait for, and whatever is posted to it meanwhile (a write, a Do, Close)
// must end that wait at once: each round here would otherwise hang.
func TestSocketActorReadsItself(t *testing.T) {
	for _, nw := range []string{"tcp", "unix"} {
		t.Run(nw, func(t *testing.T) {
			c, s := testconn.Pair(t, nw)
			before := readerLoops()
			b, err := actor.New(testbev.NewBase(t), s, 0)
			if err != nil {
				t.Fatal(err)
			}
			b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				s.Output().MoveFrom(s.Input())
			}})
			b.Enable(actor.Read)
			c.SetDeadline(time.Now().Add(testkit.WaitTime))
			buf := make([]byte, 64)
			for i := range 200 {
				// The peer's message wakes the actor through the socket.
				msg := bytes.Repeat([]byte{byte(i)}, 1+i%64)
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil {
					t.Fatalf("round %d, echo: %v", i, err)
				}
				if !bytes.Equal(buf[:len(msg)], msg) {
					t.Fatalf("round %d: echo %q, want %q", i, buf[:len(msg)], msg)
				}
				// A write posted from this goroutine must kick the
				// actor out of its wait in the socket.
				if err := b.Write([]byte{byte(i)}); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:1]); err != nil || buf[0] != byte(i) {
					t.Fatalf("round %d, posted write: got %d, %v", i, buf[0], err)
				}
			}
			if n := readerLoops() - before; n != 0 {
				t.Errorf("%d reader loops ran for a socket whose actor can read it itself", n)
			}
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			if err := testkit.Recv(t, closed, "Close of an actor waiting in its socket"); err != nil {
				t.Errorf("Close() = %v", err)
			}
		})
	}
}

// What the actor cannot be kicked out of its socket for (here a rate
// limit, and a channel whose receiver is slow) makes it start the reader
// loop, and the stream goes on through it with nothing lost.
func TestSocketReaderLoopWhenNeeded(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*actor.Bufferevent)
		take  func(*actor.Bufferevent, int) []byte
	}{
		{"rate limit", func(b *actor.Bufferevent) {
			if err := b.SetRateLimit(unlimitedRate(t)); err != nil {
				t.Fatal(err)
			}
		}, takeWithCallbacks},
		{"input channel", func(*actor.Bufferevent) {}, takeFromChannel},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, s := testconn.Pair(t, "tcp")
			before := readerLoops()
			b, err := actor.New(testbev.NewBase(t), s, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.setup(b)
			streamThrough(t, c, b, tc.take)
			if n := readerLoops() - before; n != 1 {
				t.Errorf("%d reader loops run, want 1", n)
			}
		})
	}
}

// streamThrough writes 256 KiB from the peer c and checks that b, read
// with take, gets every byte in order.
func streamThrough(t *testing.T, c net.Conn, b *actor.Bufferevent, take func(*actor.Bufferevent, int) []byte) {
	t.Helper()
	want := testkit.Pattern(256 << 10)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	got := take(b, len(want))
	if err := testkit.Recv(t, werr, "the peer's write"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
}

// takeWithCallbacks enables reading with a read callback and returns the
// first n bytes it gets.
func takeWithCallbacks(b *actor.Bufferevent, n int) []byte {
	var got bytes.Buffer
	done := make(chan struct{})
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		got.ReadFrom(s.Input())
		if got.Len() >= n {
			b.Disable(actor.Read)
			close(done)
		}
	}})
	b.Enable(actor.Read)
	select {
	case <-done:
	case <-time.After(testkit.WaitTime):
	}
	res := make(chan []byte, 1)
	b.Do(func(*actor.Session) { res <- got.Bytes() })
	return <-res
}

// takeFromChannel enables reading and receives n bytes from In(), but
// only once input is waiting: the actor then has a channel to serve while
// the socket has more to read.
func takeFromChannel(b *actor.Bufferevent, n int) []byte {
	in := b.In()
	b.Enable(actor.Read)
	deadline := time.Now().Add(testkit.WaitTime)
	for b.InputLen() == 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	var got []byte
	timeout := time.After(testkit.WaitTime)
	for len(got) < n {
		select {
		case p, ok := <-in:
			if !ok {
				return got
			}
			got = append(got, p...)
		case <-timeout:
			return got
		}
	}
	return got
}

// The switch from the actor's own reads to the reader loop can come in the
// middle of a stream (here a rate limit set from the read callback
// halfway through): every byte still arrives once and in order.
func TestSocketReaderLoopMidStream(t *testing.T) {
	c, s := testconn.Pair(t, "tcp")
	before := readerLoops()
	b, err := actor.New(testbev.NewBase(t), s, 0)
	if err != nil {
		t.Fatal(err)
	}
	const total = 4 << 20
	var (
		got      bytes.Buffer
		switched bool
		done     = make(chan struct{}, 1)
	)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		got.ReadFrom(s.Input())
		if !switched && got.Len() >= total/2 {
			switched = true
			s.Bufferevent().SetRateLimit(unlimitedRate(t))
		}
		if got.Len() >= total {
			testkit.Signal(done)
		}
	}})
	b.Enable(actor.Read)
	want := testkit.Pattern(total)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(want)
		werr <- err
	}()
	if err := testkit.Recv(t, werr, "the peer's write"); err != nil {
		t.Fatal(err)
	}
	testkit.Recv(t, done, "every byte")
	// The peer has not closed: the reader loop that took over still runs.
	if n := readerLoops() - before; n != 1 {
		t.Errorf("%d reader loops run after the rate limit was set, want 1", n)
	}
	res := make(chan []byte, 1)
	b.Do(func(*actor.Session) { res <- got.Bytes() })
	if g := testkit.Recv(t, res, "the bytes read"); !bytes.Equal(g, want) {
		t.Fatalf("read %d bytes that differ from the %d written", len(g), total)
	}
}

// unlimitedRate is a rate limit no test stream reaches: it changes how the
// socket reads (through the reader loop), not how fast.
func unlimitedRate(t testing.TB) *limiter.Config {
	t.Helper()
	cfg, err := limiter.NewConfig(1<<40, 1<<40, 1<<40, 1<<40, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Timeouts do not take a socket's reads away from its actor: a timer
// posts to the mailbox when it fires, which kicks the actor out of its
// wait in the socket. A stream with timeouts set runs no reader loop, and
// a read timeout fires while the actor waits in its socket.
func TestSocketTimeoutsWithoutReaderLoop(t *testing.T) {
	c, s := testconn.Pair(t, "tcp")
	before := readerLoops()
	b, err := actor.New(testbev.NewBase(t), s, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.SetTimeouts(time.Hour, time.Hour)
	streamThrough(t, c, b, takeWithCallbacks)

	// Now a short read timeout, and a peer that sends nothing.
	events := make(chan actor.Event, 4)
	b.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, _ error) { events <- ev }})
	b.SetTimeouts(20*time.Millisecond, 0)
	b.Enable(actor.Read)
	if ev := testkit.Recv(t, events, "the read timeout"); ev != actor.Timeout|actor.Reading {
		t.Errorf("event %v, want Timeout|Reading", ev)
	}
	if b.Enabled()&actor.Read != 0 {
		t.Errorf("reading still enabled after the timeout")
	}
	if n := readerLoops() - before; n != 0 {
		t.Errorf("%d reader loops ran for a socket with timeouts, want 0", n)
	}
}

// Deferred callbacks do not take a socket's reads away from its actor
// either: the Base's dispatcher hands a turn over through the mailbox,
// which kicks the actor out of its wait in the socket. Every read
// callback runs in a turn, and no reader loop runs.
func TestSocketDeferredWithoutReaderLoop(t *testing.T) {
	c, s := testconn.Pair(t, "tcp")
	before := readerLoops()
	b, err := actor.New(testbev.NewBase(t), s, actor.DeferCallbacks)
	if err != nil {
		t.Fatal(err)
	}
	streamThrough(t, c, b, takeWithCallbacks)
	if n := readerLoops() - before; n != 0 {
		t.Errorf("%d reader loops ran for a socket with deferred callbacks, want 0", n)
	}
}
