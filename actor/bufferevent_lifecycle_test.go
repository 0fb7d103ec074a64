package actor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// Tests of bufferevent_lifecycle.go: Close, and the methods of a closed
// bufferevent.

// Close from 100 goroutines at once returns the same result everywhere.
func TestConcurrentClose(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	results := make([]error, 100)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = a.Close() })
	}
	wg.Wait()
	for i, err := range results {
		if err != results[0] {
			t.Fatalf("Close() #%d = %v, #0 = %v", i, err, results[0])
		}
	}
	if err := a.Close(); err != results[0] {
		t.Errorf("a later Close() = %v, want %v", err, results[0])
	}
}

// After Free, the methods that post to the actor fail with ErrClosed at
// once, as ErrClosed's doc says, though the actor has not stopped yet:
// here it is held in a Do. Flush, Trigger and TriggerEvent used to return
// nil and Do, TryRead and ReadBuffer to wait for the actor and then often
// run (FuzzPairOps' model, tightened, found them).
func TestFreedMethods(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) }) // a failed Recv must not leave the actor held
	held := make(chan error, 1)
	go func() {
		held <- a.Do(func(*actor.Session) {
			close(entered)
			<-release
		})
	}()
	testkit.Recv(t, entered, "the actor running the holding Do")
	a.Free()
	errs := map[string]error{
		"Flush":        a.Flush(actor.Write, actor.Flush),
		"Trigger":      a.Trigger(actor.Read, 0),
		"TriggerEvent": a.TriggerEvent(actor.EOF, 0),
	}
	waiting := make(chan map[string]error, 1)
	go func() {
		_, readErr := a.TryRead(make([]byte, 4))
		waiting <- map[string]error{
			"Do":         a.Do(func(*actor.Session) {}),
			"TryRead":    readErr,
			"ReadBuffer": a.ReadBuffer(new(actor.Buffer)),
		}
	}()
	for name, err := range testkit.Recv(t, waiting, "Do, TryRead and ReadBuffer after Free, the actor still held") {
		errs[name] = err
	}
	releaseOnce.Do(func() { close(release) })
	if err := testkit.Recv(t, held, "the holding Do"); err != nil {
		t.Errorf("the holding Do = %v, want nil", err)
	}
	for name, err := range errs {
		if !errors.Is(err, actor.ErrClosed) {
			t.Errorf("%s after Free = %v, want ErrClosed", name, err)
		}
	}
}

// Every method of a closed bufferevent returns promptly with ErrClosed or
// the zero value; the getters of settings (watermarks, timeouts, maxima,
// priority) go on reporting what was set. SetMaxRead, SetMaxWrite,
// SetPriority and the decrements used to return nil (or ErrNoRateLimit)
// on a closed bufferevent, as if they had done something.
func TestClosedMethods(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	cfg, err := limiter.NewConfig(1000, 1000, 1000, 1000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetRateLimit(cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.SetWatermark(actor.Read, 5, 50); err != nil {
		t.Fatal(err)
	}
	g, err := limiter.NewGroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	a.Close()
	dial := func(context.Context) (actor.Transport, error) { return nil, nil }
	errs := map[string]error{
		"SetMaxRead":          a.SetMaxRead(10),
		"SetMaxWrite":         a.SetMaxWrite(10),
		"SetPriority":         a.SetPriority(0),
		"SetRateLimit":        a.SetRateLimit(cfg),
		"JoinGroup":           a.JoinGroup(g),
		"DecrementReadLimit":  a.DecrementReadLimit(1),
		"DecrementWriteLimit": a.DecrementWriteLimit(1),
		"ReplaceTransport":    a.ReplaceTransport(nil),
		"ConnectNet":          a.ConnectNet(context.Background(), dial),
		"Write":               a.Write([]byte("x")),
		"WriteBuffer":         a.WriteBuffer(new(actor.Buffer)),
		"ReadBuffer":          a.ReadBuffer(new(actor.Buffer)),
		"Do":                  a.Do(func(*actor.Session) {}),
		"Enable":              a.Enable(actor.Read),
		"Disable":             a.Disable(actor.Read),
		"SetWatermark":        a.SetWatermark(actor.Read, 0, 10),
		"SetTimeouts":         a.SetTimeouts(time.Second, 0),
		"Flush":               a.Flush(actor.Write, actor.Finished),
		"Trigger":             a.Trigger(actor.Read, 0),
		"TriggerEvent":        a.TriggerEvent(actor.EOF, 0),
		"Connect":             a.Connect(context.Background(), func(context.Context) (actor.Transport, error) { return nil, nil }),
		"SetTransport":        a.SetTransport(nil),
		"Send":                a.Send(context.Background(), []byte("x")),
		"Drain":               a.Drain(context.Background()),
	}
	if _, err := a.TryRead(make([]byte, 4)); err != nil {
		errs["Read"] = err
	}
	for name, err := range errs {
		if name == "Drain" {
			if err != nil {
				t.Errorf("Drain() on a closed bufferevent = %v, want Close's nil", err)
			}
			continue
		}
		if !errors.Is(err, actor.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, ok := <-a.In(); ok {
		t.Errorf("In() after Close is not closed")
	}
	if _, ok := <-a.Events(); ok {
		t.Errorf("Events() after Close is not closed")
	}
	if a.Enabled() != 0 || a.Transport() != nil || a.Partner() != nil || a.InputLen() != 0 {
		t.Errorf("getters after Close are not zero")
	}
	if !errors.Is(a.Err(), actor.ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", a.Err())
	}
	if low, high, err := a.Watermark(actor.Read); low != 5 || high != 50 || err != nil {
		t.Errorf("Watermark(Read) after Close = %d, %d, %v, want the marks set, 5, 50, nil", low, high, err)
	}
	if a.MaxRead() != actor.DefaultMaxRead || a.Group() != nil || a.OutputLen() != 0 {
		t.Errorf("after Close: MaxRead() = %d (want the default, unchanged), Group() = %v, OutputLen() = %d",
			a.MaxRead(), a.Group(), a.OutputLen())
	}
}

// stalledEnd returns a bufferevent whose peer never reads, so that its
// output never drains: one end of a pair whose partner keeps reading
// disabled, or a TCP socket whose peer never reads (small kernel buffers,
// so that they fill fast). Its write high watermark is 4 KiB.
func stalledEnd(t *testing.T, kind string) *actor.Bufferevent {
	t.Helper()
	var b *actor.Bufferevent
	switch kind {
	case "pair":
		b, _ = testbev.NewPair(t, 0)
	case "socket":
		_, b = smallBufferedSocket(t, "tcp")
	default:
		t.Fatalf("unknown kind %q", kind)
	}
	if err := b.SetWatermark(actor.Write, 0, 4<<10); err != nil {
		t.Fatal(err)
	}
	return b
}

// calls runs calls that may wait, each on a goroutine of its own, and
// collects what they return.
type calls struct {
	names   []string
	results chan callResult
}

type callResult struct {
	name string
	err  error
}

func newCalls() *calls { return &calls{results: make(chan callResult, 64)} }

// run starts f as the call named name.
func (c *calls) run(name string, f func() error) {
	c.names = append(c.names, name)
	go func() { c.results <- callResult{name, f()} }()
}

// wait waits until every call started has returned and gives what each
// returned. Those still waiting after testkit.WaitTime fail the test,
// named, with t.Fatalf.
func (c *calls) wait(t *testing.T, after string) map[string]error {
	t.Helper()
	timer := time.NewTimer(testkit.WaitTime)
	defer timer.Stop()
	got := map[string]error{}
	for len(got) < len(c.names) {
		select {
		case r := <-c.results:
			got[r.name] = r.err
		case <-timer.C:
			var hung []string
			for _, n := range c.names {
				if _, ok := got[n]; !ok {
					hung = append(hung, n)
				}
			}
			t.Fatalf("%v after %s: still waiting after %v", hung, after, testkit.WaitTime)
		}
	}
	return got
}

// Every call that can wait on a bufferevent returns once another
// goroutine closes it, whichever way: Send at the write high watermark,
// Drain with output the peer never reads, a send on Out selecting on
// Failed, receives from In and Events, and Do, TryRead and ReadBuffer
// queued behind a Do that holds the actor. Close comes from many
// goroutines at once (or Free, or the Base's Close) while the calls wait;
// each call returns within the test's bound with nil or an error matching
// ErrClosed (Drain: Close's result; nothing failed before its half-close),
// and every Close returns the same.
func TestCloseWhileCallsWait(t *testing.T) {
	for _, kind := range []string{"pair", "socket"} {
		for _, closer := range []string{"Close", "Free", "Base.Close"} {
			t.Run(kind+"/"+closer, func(t *testing.T) {
				testCloseWhileCallsWait(t, kind, closer)
			})
		}
	}
}

func testCloseWhileCallsWait(t *testing.T, kind, closer string) {
	b := stalledEnd(t, kind)
	ctx := context.Background()
	c := newCalls()

	// Hold the actor in a Do, so that what is posted behind it waits.
	held, release := make(chan struct{}), make(chan struct{})
	c.run("Do (holding)", func() error {
		return b.Do(func(*actor.Session) { close(held); <-release })
	})
	testkit.Recv(t, held, "the holding Do to run")
	c.run("Do (queued)", func() error { return b.Do(func(*actor.Session) {}) })
	c.run("TryRead (queued)", func() error { _, err := b.TryRead(make([]byte, 8)); return err })
	c.run("ReadBuffer (queued)", func() error { return b.ReadBuffer(new(actor.Buffer)) })
	c.run("Send", func() error { return b.Send(ctx, make([]byte, 8<<20)) })
	c.run("Drain", func() error { return b.Drain(ctx) })
	c.run("Out", func() error {
		failed := b.Failed()
		for range 1 << 16 { // the output holds 4 KiB: far fewer sends fit
			select {
			case b.Out() <- make([]byte, 1<<10):
			case <-failed:
				return nil
			}
		}
		return errors.New("Out took 64 MiB with nobody reading")
	})
	in, events := b.In(), b.Events()
	c.run("In", func() error {
		for range in {
		}
		return nil
	})
	c.run("Events", func() error {
		for range events {
		}
		return nil
	})

	// Let the actor go and close it from many goroutines at once.
	close(release)
	for i := range 8 {
		c.run(fmt.Sprintf("%s #%d", closer, i), func() error {
			switch closer {
			case "Free":
				b.Free()
				return nil
			case "Base.Close":
				return b.Base().Close()
			}
			return b.Close()
		})
	}
	got := c.wait(t, closer)
	first := b.Close()
	for name, err := range got {
		switch {
		case name == "Drain" && closer == "Base.Close" && kind == "pair" && errors.Is(err, syscall.EPIPE):
			// The Base closed the partner too: the drain's bytes were
			// lost, and Drain says so.
		case name == "Drain" || strings.HasPrefix(name, "Close"):
			if err != first {
				t.Errorf("%s = %v, want Close's result %v", name, err, first)
			}
		case err != nil && !errors.Is(err, actor.ErrClosed) && !errors.Is(err, syscall.EPIPE):
			// EPIPE: the Drain half-closed before the close came, and a
			// Send's later piece was written after it.
			t.Errorf("%s = %v, want nil or ErrClosed (or EPIPE)", name, err)
		case name == "Send" && err == nil:
			t.Errorf("Send of 8 MiB nobody reads returned nil")
		}
	}
	if err := b.Send(ctx, []byte("x")); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Send after %s = %v, want ErrClosed", closer, err)
	}
}

// A Send and then a Drain that wait (a peer that never reads) return
// once their context is cancelled, with an error wrapping the cancel's
// cause, and Drain closes the bufferevent. On a pair and on a socket.
func TestCancelWhileCallsWait(t *testing.T) {
	for _, kind := range []string{"pair", "socket"} {
		t.Run(kind, func(t *testing.T) {
			b := stalledEnd(t, kind)
			cause := errors.New("cancelled by the test")
			for _, call := range []string{"Send", "Drain"} {
				ctx, cancel := context.WithCancelCause(context.Background())
				c := newCalls()
				if call == "Send" {
					c.run(call, func() error { return b.Send(ctx, make([]byte, 8<<20)) })
					deadline := time.Now().Add(testkit.WaitTime)
					for b.OutputLen() < 4<<10 {
						if time.Now().After(deadline) {
							t.Fatal("Send did not fill the output")
						}
						runtime.Gosched()
					}
				} else {
					// Output the peer never takes, so that the drain waits.
					if err := b.Write(make([]byte, 8<<20)); err != nil {
						t.Fatal(err)
					}
					c.run(call, func() error { return b.Drain(ctx) })
				}
				cancel(cause)
				if err := c.wait(t, "cancel")[call]; !errors.Is(err, cause) {
					t.Errorf("%s = %v, want the cancel's cause", call, err)
				}
			}
			testkit.Recv(t, b.Done(), "the Drain whose context ended to close")
		})
	}
}

// Close and Free from many goroutines at once while other goroutines
// stream into the bufferevent with Write, WriteBuffer, Send and Do and
// read it with TryRead, over a pair and over a socket whose peer reads
// everything (so that writes go through a lent sink too): every call
// returns, with nil or an error matching ErrClosed (EPIPE: a pair's
// partner that the Base closed), and nothing leaks. Ten rounds each.
func TestCloseDuringTraffic(t *testing.T) {
	for _, kind := range []string{"pair", "socket"} {
		t.Run(kind, func(t *testing.T) {
			for range 10 {
				testCloseDuringTraffic(t, kind)
			}
		})
	}
}

func testCloseDuringTraffic(t *testing.T, kind string) {
	var b *actor.Bufferevent
	received := make(chan struct{}, 1)
	peerDone := make(chan struct{}) // the socket peer's reader ends (a pair has none)
	switch kind {
	case "pair":
		var p *actor.Bufferevent
		b, p = testbev.NewPair(t, 0)
		n := 0 // p's callbacks' own
		p.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
			n += s.Input().Len()
			s.Input().Drain(s.Input().Len())
			if n >= 256<<10 {
				testkit.Signal(received)
			}
		}})
		p.Enable(actor.Read)
		close(peerDone)
	default:
		peer, c := testconn.TCPConns(t)
		var err error
		if b, err = actor.New(testbev.NewBase(t), c, actor.CloseOnFree); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(peerDone)
			io.CopyN(io.Discard, peer, 256<<10)
			testkit.Signal(received)
			io.Copy(io.Discard, peer) // until b closes its end
		}()
	}
	b.Enable(actor.Read)
	ctx := context.Background()
	chunk := testkit.Pattern(1 << 10)
	c := newCalls()
	loop := func(f func() error) func() error {
		return func() error {
			for range 1 << 20 { // ended by the close, long before
				if err := f(); err != nil {
					return err
				}
			}
			return errors.New("still running after 2^20 calls")
		}
	}
	c.run("Write", loop(func() error { return b.Write(chunk) }))
	c.run("WriteBuffer", loop(func() error {
		var buf actor.Buffer
		buf.Write(chunk)
		return b.WriteBuffer(&buf)
	}))
	c.run("Send", loop(func() error { return b.Send(ctx, chunk) }))
	c.run("Do", loop(func() error { return b.Do(func(s *actor.Session) { s.Output().Write(chunk) }) }))
	c.run("TryRead", loop(func() error { _, err := b.TryRead(make([]byte, 64)); return err }))
	testkit.Recv(t, received, "256 KiB to cross")
	for i := range 8 {
		c.run(fmt.Sprintf("Close #%d", i), func() error {
			if i%2 == 1 {
				b.Free()
				return nil
			}
			return b.Close()
		})
	}
	for name, err := range c.wait(t, "Close") {
		if err != nil && !errors.Is(err, actor.ErrClosed) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("%s = %v, want nil or ErrClosed", name, err)
		}
	}
	testkit.Recv(t, peerDone, "the peer's reader to end at the close")
}

// echoOnce writes p on c and reads back len(p) bytes, within
// testkit.WaitTime, failing the test unless they are p.
func echoOnce(t *testing.T, c net.Conn, p string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(testkit.WaitTime))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(p)); err != nil {
		t.Fatalf("write %q: %v", p, err)
	}
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != p {
		t.Fatalf("echo of %q = %q, %v", p, got, err)
	}
}

// connUsable checks that a connection a bufferevent let go of is open and
// left with no deadline: a write on it reaches its peer, and a read, with
// no deadline set by the test, gets what the peer sends.
func connUsable(t *testing.T, what string, c, peer net.Conn) {
	t.Helper()
	if _, err := c.Write([]byte("out")); err != nil {
		t.Fatalf("%s: write after it was let go: %v", what, err)
	}
	peer.SetDeadline(time.Now().Add(testkit.WaitTime))
	defer peer.SetDeadline(time.Time{})
	got := make([]byte, 3)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "out" {
		t.Fatalf("%s: the peer read %q, %v, want \"out\"", what, got, err)
	}
	if _, err := peer.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		p := make([]byte, 2)
		_, err := io.ReadFull(c, p)
		if err == nil && string(p) != "in" {
			err = fmt.Errorf("read %q, want \"in\"", p)
		}
		read <- err
	}()
	if err := testkit.Recv(t, read, what+": a read after it was let go"); err != nil {
		t.Fatalf("%s: read after it was let go: %v (a deadline left behind?)", what, err)
	}
}

// Close without CloseOnFree leaves the socket open and usable, with no
// deadline left from stopping the loops (libevent's free without
// BEV_OPT_CLOSE_ON_FREE), whether the actor read the socket itself or a
// reader loop did (the channel view needs one).
func TestCloseWithoutCloseOnFree(t *testing.T) {
	for _, mode := range []string{"actor reads", "reader loop", "never read"} {
		t.Run(mode, func(t *testing.T) {
			c, s := testconn.Pair(t, "tcp")
			b, err := actor.New(testbev.NewBase(t), s, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch mode {
			case "actor reads":
				testbev.Echo(b, nil)
				echoOnce(t, c, "ping")
			case "reader loop":
				in := b.In()
				if _, err := c.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				if got := testkit.Recv(t, in, "x from In"); string(got) != "x" {
					t.Fatalf("In gave %q, want \"x\"", got)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			connUsable(t, "the socket after Close", s, c)
		})
	}
}

// SetTransport moves a bufferevent to a new socket and leaves the old one
// open and usable (libevent's setfd), and not closed by a later Close
// either; ReplaceTransport closes the old one (libevent's replacefd).
// Traffic follows the bufferevent to each new socket.
func TestSetTransport(t *testing.T) {
	c1, s1 := testconn.Pair(t, "tcp")
	c2, s2 := testconn.Pair(t, "tcp")
	c3, s3 := testconn.Pair(t, "tcp")
	b, err := actor.New(testbev.NewBase(t), s1, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	testbev.Echo(b, nil)
	echoOnce(t, c1, "one")

	if err := b.SetTransport(s2); err != nil {
		t.Fatalf("SetTransport() = %v", err)
	}
	echoOnce(t, c2, "two")
	connUsable(t, "the socket SetTransport let go", s1, c1)

	if err := b.ReplaceTransport(s3); err != nil {
		t.Fatalf("ReplaceTransport() = %v", err)
	}
	echoOnce(t, c3, "three")
	c2.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the peer of the socket ReplaceTransport replaced read %d, %v, want EOF", n, err)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	c3.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if n, err := c3.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("the peer of the last socket read %d, %v after Close with CloseOnFree, want EOF", n, err)
	}
	connUsable(t, "the socket SetTransport let go, after Close", s1, c1)
}
