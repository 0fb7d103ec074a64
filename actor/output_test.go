package actor_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// OutputLen counts what a Write, WriteBuffer or Send from another
// goroutine queued before that call returns, as libevent's
// evbuffer_get_length on the output does: a sender (le-proxy's read
// callback, say) must see what it queued to hold back when the output is
// full. Once the peer has read everything, the count is back to 0.

// waitOutputLen waits until b.OutputLen() is want, failing the test after
// testkit.WaitTime. OutputLen is published at the end of the actor's turn, so
// there is no event to wait on.
func waitOutputLen(t *testing.T, b *actor.Bufferevent, want int) {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitTime)
	for b.OutputLen() != want {
		if time.Now().After(deadline) {
			t.Fatalf("OutputLen() = %d, want %d", b.OutputLen(), want)
		}
		runtime.Gosched()
	}
}

// holdActor runs a Do on b that waits until the returned function is
// called, and returns once it is running: until then b's actor takes no
// message. Call release before closing b (Close waits for the actor).
func holdActor(t *testing.T, b *actor.Bufferevent) (release func()) {
	t.Helper()
	running, stop, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- b.Do(func(*actor.Session) {
			close(running)
			<-stop
		})
	}()
	testkit.Recv(t, running, "the held Do to run")
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			if err := testkit.Recv(t, done, "the held Do to return"); err != nil {
				t.Errorf("Do() = %v", err)
			}
		})
	}
	return release
}

// writeBy writes p to b with Write, WriteBuffer or Send.
func writeBy(how string, b *actor.Bufferevent, p []byte) error {
	switch how {
	case "Write":
		return b.Write(p)
	case "WriteBuffer":
		var buf actor.Buffer
		buf.Write(p)
		return b.WriteBuffer(&buf)
	default:
		return b.Send(context.Background(), p)
	}
}

// Before its transport, nothing drains the output: OutputLen right after
// each call is exactly what was written.
func TestOutputLenCountsPostedNoTransport(t *testing.T) {
	for _, how := range []string{"Write", "WriteBuffer", "Send"} {
		t.Run(how, func(t *testing.T) {
			b, err := actor.New(testbev.NewBase(t), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			b.SetWatermark(actor.Write, 0, 1<<20) // room for every Send
			total := 0
			for i := range 50 {
				n := 1000 + i*37
				if err := writeBy(how, b, testkit.Pattern(n)); err != nil {
					t.Fatal(err)
				}
				total += n
				if got := b.OutputLen(); got != total {
					t.Fatalf("OutputLen() = %d right after %s number %d, want %d", got, how, i+1, total)
				}
			}
			b.Close()
			if got := b.OutputLen(); got != 0 {
				t.Errorf("OutputLen() = %d after Close, want 0", got)
			}
		})
	}
}

// While the actor is busy (held in a Do), what Write and WriteBuffer
// queue waits in its mailbox; OutputLen must count it already. Then the
// peer reads everything and the count drains to 0.
func TestOutputLenCountsPosted(t *testing.T) {
	const n = 3 << 20
	for _, how := range []string{"Write", "WriteBuffer"} {
		t.Run("pair/"+how, func(t *testing.T) {
			a, b := testbev.NewPair(t, 0)
			defer a.Close()
			defer b.Close()
			got := make(chan int, 1)
			total := 0
			b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				total += s.Input().Len()
				s.Input().Drain(s.Input().Len())
				if total == n {
					got <- total
				}
			}})
			release := holdActor(t, a)
			defer release() // before the Closes, which wait for the actor
			if err := writeBy(how, a, testkit.Pattern(n)); err != nil {
				t.Fatal(err)
			}
			if l := a.OutputLen(); l != n {
				t.Fatalf("OutputLen() = %d right after %s of %d bytes, want %d", l, how, n, n)
			}
			release()
			b.Enable(actor.Read)
			testkit.Recv(t, got, "the partner to read everything")
			waitOutputLen(t, a, 0)
		})
		for _, nw := range []string{"tcp", "unix"} {
			t.Run(nw+"/"+how, func(t *testing.T) {
				c, s := testconn.Pair(t, nw)
				b, err := actor.New(testbev.NewBase(t), s, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				release := holdActor(t, b)
				defer release() // before the Close, which waits for the actor
				if err := writeBy(how, b, testkit.Pattern(n)); err != nil {
					t.Fatal(err)
				}
				if l := b.OutputLen(); l != n {
					t.Fatalf("OutputLen() = %d right after %s of %d bytes, want %d", l, how, n, n)
				}
				release()
				if _, err := io.CopyN(io.Discard, c, n); err != nil {
					t.Fatalf("reading the %d bytes: %v", n, err)
				}
				waitOutputLen(t, b, 0)
			})
		}
	}
}

// Writers on many goroutines race with the actor landing their bytes and
// writing them to the kernel: the count, which both sides change, is
// never negative, and once the peer has read everything it is 0 (a lost
// or doubled update would leave it off for good).
func TestOutputLenConcurrentWriters(t *testing.T) {
	for _, how := range []string{"Write", "WriteBuffer", "Send"} {
		t.Run(how, func(t *testing.T) {
			c, s := testconn.Pair(t, "tcp")
			b, err := actor.New(testbev.NewBase(t), s, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const writers, rounds, size = 8, 50, 4096
			if how == "Send" {
				// Send waits below the write high watermark: leave room
				// for all of it, since nobody reads until the end.
				b.SetWatermark(actor.Write, 0, 2*writers*rounds*size)
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers*rounds)
			for range writers {
				wg.Go(func() {
					for i := range rounds {
						if err := writeBy(how, b, testkit.Pattern(size)); err != nil {
							errs <- err
							return
						}
						if l := b.OutputLen(); l < 0 {
							errs <- fmt.Errorf("OutputLen() = %d right after %s number %d", l, how, i+1)
							return
						}
					}
				})
			}
			// The peer reads only once every call has returned.
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			total := int64(writers * rounds * size)
			readDone := make(chan error, 1)
			go func() {
				_, err := io.CopyN(io.Discard, c, total)
				readDone <- err
			}()
			deadline := time.Now().Add(testkit.WaitTime)
			for l := b.OutputLen(); l != 0; l = b.OutputLen() {
				if l < 0 {
					t.Fatalf("OutputLen() = %d while the peer reads", l)
				}
				if time.Now().After(deadline) {
					t.Fatalf("OutputLen() = %d after the peer read everything, want 0", l)
				}
				runtime.Gosched()
			}
			if err := testkit.Recv(t, readDone, "the peer to read everything"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Sends still waiting for room when the bufferevent closes give their
// count back, and Close leaves OutputLen at 0.
func TestOutputLenSendsCutByClose(t *testing.T) {
	b, err := actor.New(testbev.NewBase(t), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.SetWatermark(actor.Write, 0, 1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			b.Send(context.Background(), testkit.Pattern(10000)) // blocks at the mark until Close
		})
	}
	waitOutputLen(t, b, 1000+4*1000) // one piece landed, one per sender waiting
	b.Close()
	wg.Wait()
	if got := b.OutputLen(); got != 0 {
		t.Errorf("OutputLen() = %d after Close, want 0", got)
	}
}

// Written counts every byte a transport took, whichever way it went: a
// write from another goroutine (which a socket's idle actor lets through
// its lent sink), one through the mailbox, one from a callback. Once the
// peer has read them all and the bufferevent is closed, it is exactly
// what was written.
func TestWrittenCountsEveryWay(t *testing.T) {
	const chunk, rounds = 40 << 10, 8
	for _, nw := range []string{"tcp", "unix", "pair"} {
		for _, how := range []string{"Write", "WriteBuffer", "Send", "callback"} {
			t.Run(nw+"/"+how, func(t *testing.T) {
				var b *actor.Bufferevent
				var peer io.Reader
				if nw == "pair" {
					var p *actor.Bufferevent
					b, p = testbev.NewPair(t, 0)
					peer = &chanReader{in: p.In()}
				} else {
					c, s := testconn.Pair(t, nw)
					var err error
					if b, err = actor.New(testbev.NewBase(t), s, actor.CloseOnFree); err != nil {
						t.Fatal(err)
					}
					peer = c
				}
				for i := range rounds {
					p := testkit.PatternAt(0, i*chunk, chunk)
					var err error
					if how == "callback" {
						err = b.Do(func(s *actor.Session) { s.Write(p) })
					} else {
						err = writeBy(how, b, p)
					}
					if err != nil {
						t.Fatal(err)
					}
					got := make([]byte, chunk)
					if _, err := io.ReadFull(peer, got); err != nil {
						t.Fatalf("round %d: %v", i, err)
					}
					if off := testkit.PatternMismatch(0, i*chunk, got); off >= 0 {
						t.Fatalf("round %d: byte %d differs", i, off)
					}
				}
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				if got := b.Written(); got != chunk*rounds {
					t.Errorf("Written() = %d after the peer read %d bytes and Close, want that", got, chunk*rounds)
				}
			})
		}
	}
}

// Close cuts a write in flight: the peer does not read, so the kernel
// buffers fill and the writer loop waits in a write when Close comes.
// Written must count exactly what reached the connection, the part of
// that cut write the kernel took included: the peer then reads exactly
// Written bytes, then EOF. A proxy logs "sent" and "dropped" from it.
func TestWrittenExactWhenCloseCutsAWrite(t *testing.T) {
	const n = 16 << 20
	for _, nw := range []string{"tcp", "unix"} {
		t.Run(nw, func(t *testing.T) {
			c, s := testconn.Pair(t, nw)
			// Small buffers, so most of the 16 MiB is left unwritten.
			s.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(64 << 10)
			c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(64 << 10)
			b, err := actor.New(testbev.NewBase(t), s, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Write(testkit.Pattern(n)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(testkit.WaitTime)
			for b.Written() == 0 || b.OutputLen() == n {
				if time.Now().After(deadline) {
					t.Fatalf("Written() = %d, OutputLen() = %d: no write began", b.Written(), b.OutputLen())
				}
				runtime.Gosched()
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			written := b.Written()
			c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
			got, err := io.Copy(io.Discard, c)
			if err != nil {
				t.Fatalf("reading after the close: %v (after %d bytes)", err, got)
			}
			if got != written {
				t.Errorf("the peer read %d bytes, Written() = %d after Close", got, written)
			}
			if written >= n {
				t.Errorf("Written() = %d: all %d bytes went, the close cut nothing", written, n)
			}
		})
	}
}
