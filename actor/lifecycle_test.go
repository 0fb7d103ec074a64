package actor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of lifecycle.go: drain, connect and handshake.

// Drain writes every byte, half-closes, and closes.
func TestDrain(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	in := b.In()
	payload := testkit.Pattern(100000)
	a.Write(payload)
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(context.Background()) }()
	checkDrained(t, in, drained, payload, "Drain")
}

// Drain writes only while writing is enabled, as every write does: with
// Write disabled, the half-close it asks for (Flush(Write, Finished),
// Drain's first step) leaves the output untouched until Enable(Write);
// then every byte goes, the partner reads EOF, and Drain returns nil.
func TestDrainWaitsForWriting(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	in := b.In()
	payload := testkit.Pattern(5000)
	a.Disable(actor.Write)
	a.Write(payload)
	if err := a.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatalf("Flush(Write, Finished) = %v", err)
	}
	var out int
	if err := a.Do(func(s *actor.Session) { out = s.Output().Len() }); err != nil {
		t.Fatalf("Do() = %v", err)
	}
	if out != len(payload) {
		t.Errorf("output %d bytes after Flush(Write, Finished) with writing disabled, want %d", out, len(payload))
	}
	if got := testkit.Pending(in); len(got) != 0 {
		t.Errorf("partner received %d chunks with writing disabled", len(got))
	}
	drained := make(chan error, 1)
	go func() { drained <- a.Drain(context.Background()) }()
	a.Enable(actor.Write)
	checkDrained(t, in, drained, payload, "Drain after Enable(Write)")
}

// checkDrained reads the partner's In until it is closed (its EOF), then
// checks that the Drain whose result drained carries, named what,
// returned nil and that the partner received payload. Every wait is
// bounded by testkit.WaitTime.
func checkDrained(t *testing.T, in <-chan []byte, drained <-chan error, payload []byte, what string) {
	t.Helper()
	got := testkit.RecvAll(t, in, "the partner's In")
	if err := testkit.Recv(t, drained, what); err != nil {
		t.Errorf("Drain() = %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Errorf("partner received %d bytes, want %d", len(got), len(payload))
	}
}

// Drain gives up when its context ends, and still closes.
func TestDrainTimeout(t *testing.T) {
	a, _ := testbev.NewPair(t, 0) // the partner never reads
	a.Write(testkit.Pattern(1000))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Drain() = %v, want DeadlineExceeded", err)
	}
	testkit.Recv(t, a.Done(), "closed after a failed drain")
}

// failingCloseWrite is one end of a net.Pipe whose half-close fails, as a
// TCP socket's shutdown does (ENOTCONN) once a reset has come.
type failingCloseWrite struct{ net.Conn }

func (failingCloseWrite) CloseWrite() error {
	return &net.OpError{Op: "close", Net: "pipe", Err: os.NewSyscallError("shutdown", syscall.ENOTCONN)}
}

// Drain reports output it could not deliver, instead of a clean close: a
// write that fails before its half-close (the partner of a pair closes
// while the output waits: EPIPE), or a half-close that fails (a TCP
// socket's shutdown after a reset: the kernel threw away what it held).
// Either is an error wrapping ErrOutputLost and the cause; Drain closes
// the bufferevent and returns promptly. A bufferevent that fails while
// the drain waits (its output stage fails at Finished) makes Drain return
// that failure. (It returned nil, Close's result, in all three.)
func TestDrainReportsLostOutput(t *testing.T) {
	t.Run("write fails", func(t *testing.T) {
		a, b := testbev.NewPair(t, 0) // b never reads
		a.SetWatermark(actor.Write, 0, 1<<10)
		a.Write(testkit.Pattern(1 << 20))
		drained := make(chan error, 1)
		go func() { drained <- a.Drain(context.Background()) }()
		b.Close()
		if err := testkit.Recv(t, drained, "Drain"); !errors.Is(err, actor.ErrOutputLost) || !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Drain with its partner gone = %v, want ErrOutputLost and EPIPE", err)
		}
		testkit.Recv(t, a.Done(), "a closed by the failed Drain")
	})
	t.Run("stage fails", func(t *testing.T) {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c2.Close() })
		go io.Copy(io.Discard, c2)
		boom := errors.New("no trailer")
		failFinished := stageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
			if mode == actor.Finished {
				return actor.StageError, boom
			}
			return actor.StageOK, dst.MoveFrom(src)
		})
		a, err := actor.NewStaged(testbev.NewBase(t), c1, actor.CloseOnFree, nil, failFinished)
		if err != nil {
			t.Fatal(err)
		}
		a.Write(testkit.Pattern(1 << 10))
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
		defer cancel()
		if err := a.Drain(ctx); !errors.Is(err, boom) {
			t.Errorf("Drain whose output stage failed at Finished = %v, want the stage's error", err)
		}
	})
	t.Run("half-close fails", func(t *testing.T) {
		c1, c2 := net.Pipe()
		t.Cleanup(func() { c2.Close() })
		go io.Copy(io.Discard, c2) // reads all, until c1 is closed
		a, err := actor.New(testbev.NewBase(t), failingCloseWrite{c1}, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		a.Write(testkit.Pattern(1 << 10))
		ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
		defer cancel()
		if err := a.Drain(ctx); !errors.Is(err, actor.ErrOutputLost) || !errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("Drain whose half-close failed = %v, want ErrOutputLost and ENOTCONN", err)
		}
	})
}

// TestFinishWhileConnecting: a Flush(Write, Finished) made while a connect
// is in flight applies to the connection it makes: the peer reads every
// byte, then EOF. It used to be reset when the transport arrived, so the
// peer never saw EOF and a Drain begun while connecting hung.
func TestFinishWhileConnecting(t *testing.T) {
	ln := testconn.Listen(t)
	b, err := actor.New(nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release := make(chan struct{})
	if err := b.Connect(context.Background(), func(ctx context.Context) (actor.Transport, error) {
		select {
		case <-release:
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ln.Addr().String())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatal(err)
	}
	// The flush has been handled, and the dial is still held.
	if err := b.Do(func(*actor.Session) {}); err != nil {
		t.Fatal(err)
	}
	close(release)
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(peer)
	if string(got) != "hello" || err != nil {
		t.Errorf("peer ReadAll = %q, %v, want %q, nil (EOF after the bytes)", got, err, "hello")
	}
}

// onActor reports whether the calling goroutine is a bufferevent's actor:
// its stack starts in the actor's loop.
func onActor() bool {
	buf := make([]byte, 16<<10)
	return strings.Contains(string(buf[:runtime.Stack(buf, false)]), "actor.(*actorState).run(")
}

// TestConnectNetDialsOnActor: ConnectNet's dial runs on the actor's own
// goroutine when the bufferevent has nothing else to do meanwhile, and on
// a goroutine of its own when it has (a timeout to watch) or with
// Connect; either way the connect ends in Connected and the connection
// carries the bytes written while it was made.
func TestConnectNetDialsOnActor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		net     bool
		timeout time.Duration
		onActor bool
	}{
		{"ConnectNet", true, 0, true},
		{"ConnectNet with a timeout", true, time.Minute, false},
		{"Connect", false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := testconn.Listen(t)
			b, err := actor.New(nil, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			events := b.Events()
			if tc.timeout > 0 {
				b.SetTimeouts(tc.timeout, tc.timeout)
			}
			here := make(chan bool, 1)
			dial := func(ctx context.Context) (actor.Transport, error) {
				here <- onActor()
				var d net.Dialer
				return d.DialContext(ctx, "tcp", ln.Addr().String())
			}
			connect := b.Connect
			if tc.net {
				connect = b.ConnectNet
			}
			if err := connect(context.Background(), dial); err != nil {
				t.Fatal(err)
			}
			b.Write([]byte("hello"))
			b.Flush(actor.Write, actor.Finished)
			if got := testkit.Recv(t, here, "the dial"); got != tc.onActor {
				t.Errorf("dial on the actor's goroutine = %v, want %v", got, tc.onActor)
			}
			if ev := testkit.Recv(t, events, "the connect's event"); ev.Event != actor.Connected {
				t.Fatalf("event = %v (%v), want Connected", ev.Event, ev.Err)
			}
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			peer.SetReadDeadline(time.Now().Add(10 * time.Second))
			if got, err := io.ReadAll(peer); string(got) != "hello" || err != nil {
				t.Errorf("peer ReadAll = %q, %v, want %q, nil", got, err, "hello")
			}
		})
	}
}

// TestConnectNetFreeWhileDialing: Close while the actor runs a
// ConnectNet's dial itself cancels the dial at once and returns, and no
// event is reported after it; what the dial made then is closed.
func TestConnectNetFreeWhileDialing(t *testing.T) {
	for _, made := range []bool{false, true} {
		t.Run(fmt.Sprintf("made=%v", made), func(t *testing.T) {
			b, err := actor.New(nil, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			events := b.Events()
			started := make(chan bool, 1)
			cause := make(chan error, 1)
			c1, c2 := net.Pipe()
			defer c2.Close()
			if err := b.ConnectNet(context.Background(), func(ctx context.Context) (actor.Transport, error) {
				started <- onActor()
				<-ctx.Done()
				cause <- ctx.Err()
				if made {
					return c1, nil // as a dial that connected just as it was canceled
				}
				return nil, ctx.Err()
			}); err != nil {
				t.Fatal(err)
			}
			if !testkit.Recv(t, started, "the dial") {
				t.Fatal("the dial did not run on the actor's goroutine")
			}
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			testkit.Recv(t, closed, "Close while dialing")
			if err := testkit.Recv(t, cause, "the dial's end"); !errors.Is(err, context.Canceled) {
				t.Errorf("the dial's context ended with %v, want Canceled", err)
			}
			for ev := range events {
				t.Errorf("event %v (%v) after Close", ev.Event, ev.Err)
			}
			if made {
				c2.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("the dialled transport's peer reads %v, want EOF (closed)", err)
				}
			}
		})
	}
}

// gateConn is a Handshaker over one end of a net.Pipe: its handshake
// reports that it started, then waits for a verdict (nil lets it through)
// or for its context.
type gateConn struct {
	net.Conn
	started chan struct{}
	verdict chan error
	ended   chan error // what Handshake returned
}

func newGateConn(c net.Conn) *gateConn {
	return &gateConn{Conn: c, started: make(chan struct{}, 1), verdict: make(chan error, 1), ended: make(chan error, 1)}
}

// newGated returns a bufferevent (on a Base, CloseOnFree) over a gateConn
// on one end of a net.Pipe, the gateConn, and the pipe's other end, which
// is closed when the test ends; closing the bufferevent is the caller's.
func newGated(t *testing.T) (*actor.Bufferevent, *gateConn, net.Conn) {
	t.Helper()
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c2.Close() })
	g := newGateConn(c1)
	b, err := actor.New(testbev.NewBase(t), g, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	return b, g, c2
}

func (g *gateConn) Handshake(ctx context.Context) error {
	g.started <- struct{}{}
	var err error
	select {
	case err = <-g.verdict:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		g.Conn.Close()
	}
	g.ended <- err
	return err
}

// TestHandshaker: a Handshaker given to New is the bufferevent's
// transport at once (Conn reports it) but is not read nor written before
// its handshake; the handshake starts when the bufferevent first wants
// I/O, not before; Connect is busy while it runs; it ends in Connected,
// after which writes held meanwhile are sent, or in Error, after which
// the transport is closed; and Close cancels it and waits for it.
func TestHandshaker(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		b, g, c2 := newGated(t)
		defer b.Close()
		if b.Conn() != net.Conn(g) {
			t.Errorf("Conn() = %v before the handshake, want the transport", b.Conn())
		}
		events := make(chan actor.EventInfo, 4)
		b.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
			events <- actor.EventInfo{Event: ev, Err: err}
		}})
		if err := b.Do(func(*actor.Session) {}); err != nil { // the actor has seen the callbacks
			t.Fatal(err)
		}
		select {
		case <-g.started:
			t.Fatal("the handshake started with no I/O wanted")
		default:
		}
		b.Write([]byte("held"))
		testkit.Recv(t, g.started, "the handshake to start on Write")
		if err := b.Connect(context.Background(), func(context.Context) (actor.Transport, error) { return nil, io.EOF }); !errors.Is(err, actor.ErrBusy) {
			t.Errorf("Connect during the handshake = %v, want ErrBusy", err)
		}
		g.verdict <- nil
		if e := testkit.Recv(t, events, "Connected"); e.Event != actor.Connected {
			t.Errorf("event %v (%v), want Connected", e.Event, e.Err)
		}
		c2.SetReadDeadline(time.Now().Add(testkit.WaitTime))
		p := make([]byte, 4)
		if _, err := io.ReadFull(c2, p); err != nil || string(p) != "held" {
			t.Errorf("peer read %q, %v, want the write held during the handshake", p, err)
		}
	})
	t.Run("failure", func(t *testing.T) {
		b, g, _ := newGated(t)
		defer b.Close()
		events := make(chan actor.EventInfo, 4)
		reads := make(chan struct{}, 4)
		b.SetCallbacks(actor.Callbacks{
			Read: func(*actor.Session) { reads <- struct{}{} },
			Event: func(_ *actor.Session, ev actor.Event, err error) {
				events <- actor.EventInfo{Event: ev, Err: err}
			},
		})
		b.Enable(actor.Read)
		testkit.Recv(t, g.started, "the handshake to start on Enable")
		bad := errors.New("bad handshake")
		g.verdict <- bad
		if e := testkit.Recv(t, events, "Error"); e.Event != actor.Error || !errors.Is(e.Err, bad) {
			t.Errorf("event %v (%v), want Error with the handshake's error", e.Event, e.Err)
		}
		b.Do(func(*actor.Session) {})
		if b.Conn() != nil || len(reads) != 0 || len(events) != 0 {
			t.Errorf("after a failed handshake: Conn() = %v, %d reads, %d more events; want nil, 0, 0", b.Conn(), len(reads), len(events))
		}
	})
	t.Run("close", func(t *testing.T) {
		b, g, _ := newGated(t)
		events := make(chan actor.EventInfo, 4)
		b.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
			events <- actor.EventInfo{Event: ev, Err: err}
		}})
		b.In()
		testkit.Recv(t, g.started, "the handshake to start on In")
		b.Close()
		select {
		case err := <-g.ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Handshake returned %v after Close, want context.Canceled", err)
			}
		default:
			t.Error("Close returned before the handshake did")
		}
		if len(events) != 0 {
			t.Errorf("event %v after Close, want none", <-events)
		}
	})
}

// TestLargeStack: the actors of bufferevents made with LargeStack start
// on 8 KiB stacks, those made without on the runtime's 2 KiB (which a
// first Do grows to 4 KiB for most): the stack memory in use grows by at
// least 3 KiB more per actor with it. The count is of the stack spans in
// use, so stacks freed earlier into spans still in use go uncounted: with
// 200 actors a run read 6717 bytes with LargeStack against 4096 without;
// with 1000 the two read 8159-8224 and 3473-4128 (race and not). Every
// actor lives until the end, and a GC
// before each count returns the stacks freed before. No GC may run while
// it counts: a GC halves the stack of a goroutine that uses under a
// quarter of it, as a parked actor does, so one that ran between the Dos
// and the count read 6062 bytes per actor against 3112 without (seen once
// in a full run of the suite; a GC forced there fails it every time).
func TestLargeStack(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const n = 1000
	var all []*actor.Bufferevent
	defer func() {
		for _, b := range all {
			b.Close()
		}
	}()
	stackPer := func(opts actor.Option) int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := int64(ms.StackInuse)
		bs := make([]*actor.Bufferevent, n)
		for i := range bs {
			b, err := actor.New(nil, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			bs[i] = b
			all = append(all, b)
		}
		// Each actor has started (and grown) once it has run a Do.
		for _, b := range bs {
			if err := b.Do(func(*actor.Session) {}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&ms)
		return (int64(ms.StackInuse) - before) / n
	}
	plain := stackPer(actor.CloseOnFree)
	large := stackPer(actor.CloseOnFree | actor.LargeStack)
	if large < plain+3<<10 {
		t.Errorf("stack in use per actor: %d bytes with LargeStack, %d without; want about 8 KiB and 2 KiB", large, plain)
	}
}

// panicHandshaker is a transport whose handshake panics.
type panicHandshaker struct{ net.Conn }

func (panicHandshaker) Handshake(context.Context) error { panic("handshake") }

// A dial (Connect, ConnectNet) or a transport's handshake that panics runs
// user code on a goroutine the bufferevent owns, or on the actor itself:
// the panic closes that bufferevent, as a callback's does, with an Error
// event and Err carrying the *PanicError, instead of ending the process.
// The handshake's transport is closed.
func TestPanicInDialAndHandshake(t *testing.T) {
	boom := func(context.Context) (actor.Transport, error) { panic("dial") }
	for _, tc := range []struct {
		name, value string
		start       func(t *testing.T, b *actor.Bufferevent) error
		transport   func(t *testing.T) (actor.Transport, net.Conn)
	}{
		{"Connect", "dial", func(t *testing.T, b *actor.Bufferevent) error {
			return b.Connect(context.Background(), boom)
		}, nil},
		{"ConnectNet", "dial", func(t *testing.T, b *actor.Bufferevent) error {
			return b.ConnectNet(context.Background(), boom)
		}, nil},
		{"Handshake", "handshake", func(t *testing.T, b *actor.Bufferevent) error {
			return b.Enable(actor.Read)
		}, func(t *testing.T) (actor.Transport, net.Conn) {
			c1, c2 := net.Pipe()
			t.Cleanup(func() { c2.Close() })
			return panicHandshaker{c1}, c2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr actor.Transport
			var peer net.Conn
			if tc.transport != nil {
				tr, peer = tc.transport(t)
			}
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			events := b.Events()
			if err := tc.start(t, b); err != nil {
				t.Fatal(err)
			}
			var pe *actor.PanicError
			ev := testkit.Recv(t, events, "the Error event")
			if ev.Event&actor.Error == 0 || !errors.As(ev.Err, &pe) || pe.Value != tc.value {
				t.Errorf("event %v %v, want Error with the *PanicError of %q", ev.Event, ev.Err, tc.value)
			}
			testkit.Recv(t, b.Done(), "the bufferevent to stop after its "+tc.value+" panicked")
			if err := b.Err(); !errors.As(err, &pe) || !errors.Is(err, actor.ErrPanic) {
				t.Errorf("Err() = %v, want the *PanicError", err)
			}
			if peer != nil {
				peer.SetReadDeadline(time.Now().Add(testkit.WaitTime))
				if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("the transport's peer reads %v, want EOF (closed)", err)
				}
			}
		})
	}
}
