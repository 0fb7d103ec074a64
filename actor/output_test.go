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
