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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of channels.go: In, Send and Failed, also when the output fails.

// resetPeer returns a bufferevent over a TCP connection whose peer, once it
// has read the first byte, resets the connection (SetLinger(0), Close).
func resetPeer(t *testing.T) (*actor.Bufferevent, <-chan struct{}) {
	t.Helper()
	ln := testconn.Listen(t)
	reset := make(chan struct{})
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- err
			close(reset)
			return
		}
		accepted <- nil
		var one [1]byte
		c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
		io.ReadFull(c, one[:])
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		close(reset)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.Recv(t, accepted, "accept"); err != nil {
		t.Fatal(err)
	}
	b, err := actor.New(testbev.NewBase(t), c, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); <-reset })
	return b, reset
}

// isBroken reports whether err says the stream failed: a reset, a broken
// pipe, or a closed bufferevent.
func isBroken(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, actor.ErrClosed)
}

// A peer that resets the connection during a large Send makes the Send
// return promptly with the cause, and every later write too (issue 13,
// item 1).
func TestSendToResetPeer(t *testing.T) {
	b, reset := resetPeer(t)
	const size = 100 << 20
	done := make(chan error, 1)
	go func() { done <- b.Send(context.Background(), make([]byte, size)) }()
	<-reset
	err := testkit.Recv(t, done, "Send to return after the peer's reset")
	if err == nil || !isBroken(err) {
		t.Fatalf("Send(100 MiB) to a peer that reset = %v, want ECONNRESET or EPIPE", err)
	}
	if b.OutputLen() == 0 {
		t.Errorf("OutputLen() = 0 when Send failed: bytes never written were counted written")
	}
	testkit.Recv(t, b.Failed(), "Failed to be closed")
	if err := b.Write([]byte("late")); !isBroken(err) {
		t.Errorf("Write after the reset = %v, want ECONNRESET or EPIPE", err)
	}
	if err := b.Send(context.Background(), []byte("late")); !isBroken(err) {
		t.Errorf("Send after the reset = %v, want ECONNRESET or EPIPE", err)
	}
	var buf actor.Buffer
	buf.Write([]byte("late"))
	if err := b.WriteBuffer(&buf); !isBroken(err) || buf.Len() != 4 {
		t.Errorf("WriteBuffer after the reset = %v (left %d bytes), want ECONNRESET or EPIPE, buffer kept", err, buf.Len())
	}
	select {
	case b.Out() <- []byte("late"):
		t.Errorf("a send on Out after the reset was taken")
	case <-b.Failed():
	}
	// What the failed write did not send is still output (looked at on
	// the actor: OutputLen is published at the end of the actor's turn).
	var left int
	if err := b.Do(func(s *actor.Session) { left = s.Output().Len() }); err != nil {
		t.Fatalf("Do = %v", err)
	}
	if left == 0 || b.OutputLen() == 0 {
		t.Errorf("output holds %d bytes (OutputLen %d) after a reset cut a 100 MiB Send: bytes never written were counted written", left, b.OutputLen())
	}
}

// Writes to one end of a pair whose partner closed fail at once with the
// cause, which matches syscall.EPIPE as a socketpair's would; and after
// Close every write fails with ErrClosed, Failed being closed.
func TestSendToClosedPartner(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	a.SetWatermark(actor.Write, 0, 1<<10)
	done := make(chan error, 1)
	go func() { done <- a.Send(context.Background(), make([]byte, 1<<20)) }()
	b.Close()
	err := testkit.Recv(t, done, "Send to return after the partner closed")
	if !errors.Is(err, syscall.EPIPE) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Send to a closed partner = %v, want EPIPE and io.ErrClosedPipe", err)
	}
	if err := a.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Write to a closed partner = %v, want EPIPE", err)
	}
	a.Close()
	testkit.Recv(t, a.Failed(), "Failed after Close")
	if err := a.Send(context.Background(), []byte("x")); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

// Failed is closed by Close even when the output never failed, and a
// send on Out that selects on it returns.
func TestFailedOnClose(t *testing.T) {
	a, _ := testbev.NewPair(t, 0)
	f := a.Failed()
	select {
	case <-f:
		t.Fatal("Failed() closed on a running bufferevent")
	default:
	}
	a.Close()
	testkit.Recv(t, f, "Failed after Close")
}

// The channel view: Send on one side, In on the other, EOF closes In.
func TestChannels(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	ctx := context.Background()
	in := b.In()
	if b.Enabled()&actor.Read == 0 {
		t.Errorf("In() did not enable reading")
	}
	var want bytes.Buffer
	for i := range 100 {
		msg := fmt.Appendf(nil, "message %d;", i)
		want.Write(msg)
		if err := a.Send(ctx, msg); err != nil {
			t.Fatalf("Send() = %v", err)
		}
	}
	a.Flush(actor.Write, actor.Finished)
	var got bytes.Buffer
	for chunk := range in {
		got.Write(chunk)
	}
	if got.String() != want.String() {
		t.Errorf("In() delivered %q, want %q", got.String(), want.String())
	}
	if !errors.Is(b.Err(), io.EOF) {
		t.Errorf("Err() after In closed = %v, want io.EOF", b.Err())
	}
}

// Each chunk In hands over belongs to the receiver: kept without a copy
// while 4 MiB more stream through, the chunks still hold, in order,
// exactly what was sent (a chunk going back to its pool would be written
// over by later reads).
func TestInChunksBelongToReceiver(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	in := b.In()
	want := testkit.Pattern(4 << 20)
	sent := make(chan struct{})
	defer func() { <-sent }() // joined: a.Close (the test's cleanup) comes after
	go func() {
		defer close(sent)
		for p := want; len(p) > 0; {
			n := min(len(p), 3000)
			if a.Send(context.Background(), p[:n]) != nil {
				return
			}
			p = p[n:]
		}
		a.Flush(actor.Write, actor.Finished)
	}()
	var kept [][]byte
	for chunk := range in {
		kept = append(kept, chunk)
	}
	if got := bytes.Join(kept, nil); !bytes.Equal(got, want) {
		t.Fatalf("the %d chunks kept from In hold %d bytes that differ from the %d sent", len(kept), len(got), len(want))
	}
}

// Send blocks at the write high watermark and honours its context.
func TestSendBackpressure(t *testing.T) {
	a, _ := testbev.NewPair(t, 0) // the partner never reads
	a.SetWatermark(actor.Write, 0, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	sent := 0
	var err error
	for sent < 1<<20 {
		if err = a.Send(ctx, make([]byte, 512)); err != nil {
			break
		}
		sent += 512
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send() kept succeeding (%d bytes) or failed oddly: %v", sent, err)
	}
	// At most the high watermark waits in output, plus the batch the
	// writer loop holds and one send's worth.
	if limit := 1024 + actor.DefaultMaxWrite + 512; sent > limit {
		t.Errorf("Send accepted %d bytes with nobody reading, want <= %d", sent, limit)
	}
}

// A bare send on Out blocks while the output is at the write high
// watermark, as Send does (TestSendBackpressure): with the partner never
// reading, Out takes the high watermark and the batch the writer loop
// holds, then no more until the 200 ms bound ends the attempt.
func TestOutBackpressure(t *testing.T) {
	a, _ := testbev.NewPair(t, 0) // the partner never reads
	const high, piece = 4 << 10, 512
	a.SetWatermark(actor.Write, 0, high)
	out := a.Out()
	stop := time.NewTimer(200 * time.Millisecond)
	defer stop.Stop()
	sent := 0
	for blocked := false; !blocked && sent < 1<<20; {
		select {
		case out <- make([]byte, piece):
			sent += piece
		case <-stop.C:
			blocked = true
		}
	}
	if limit := high + actor.DefaultMaxWrite + piece; sent > limit {
		t.Errorf("Out took %d bytes with nobody reading, want <= %d", sent, limit)
	}
	if sent < high {
		t.Errorf("Out took %d bytes, want at least the high watermark %d", sent, high)
	}
}

// A Send after a Write from the same goroutine puts its bytes after the
// Write's, on a pair and on a socket. The Write waits in the mailbox
// while the Send's piece is a channel hand-off: an actor that took the
// piece first, as a select with both ready may, sent "S" ahead of the
// w's (conn's TestPeerNeverReads saw Send go in over a full output; 32
// rounds in 100 here, before Send carried its place in the mailbox).
func TestSendAfterWriteKeepsOrder(t *testing.T) {
	const rounds, size = 100, 4 << 10
	for _, tc := range []struct {
		name string
		ends func(t *testing.T) (w *actor.Bufferevent, r io.Reader)
	}{
		{"pair", func(t *testing.T) (*actor.Bufferevent, io.Reader) {
			a, b := testbev.NewPair(t, 0)
			return a, &chanReader{in: b.In()}
		}},
		{"socket", func(t *testing.T) (*actor.Bufferevent, io.Reader) {
			c1, c2 := testconn.TCPConns(t)
			s, err := actor.New(testbev.NewBase(t), c1, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			c2.SetReadDeadline(time.Now().Add(testkit.WaitTime))
			return s, c2
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, r := tc.ends(t)
			// Above every round's bytes, so Send never waits for room.
			w.SetWatermark(actor.Write, 0, rounds*(size+1)+1)
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			round := append(bytes.Repeat([]byte("w"), size), 'S')
			for range rounds {
				if err := w.Write(round[:size]); err != nil {
					t.Fatal(err)
				}
				if err := w.Send(ctx, round[size:]); err != nil {
					t.Fatal(err)
				}
			}
			got := make([]byte, rounds*len(round))
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("read %v", err)
			}
			for i := range rounds {
				if p := got[i*len(round):][:len(round)]; !bytes.Equal(p, round) {
					t.Fatalf("round %d: 'S' at %d, want after the Write's %d bytes", i, bytes.IndexByte(p, 'S'), size)
				}
			}
		})
	}
}

// Backpressure end to end on the channel view, against a peer that
// floods a TCP socket while nobody receives from In: the input stops at
// the read high watermark (plus one read), reading stops, the kernel
// window fills and the peer's write blocks (until its 300 ms deadline,
// far from the 64 MiB it tried). Then every byte the peer wrote comes out
// of In, in order, and In closes with EOF.
func TestInBackpressureAgainstFlood(t *testing.T) {
	peer, c := testconn.TCPConns(t)
	peer.SetWriteBuffer(64 << 10)
	c.SetReadBuffer(64 << 10)
	b, err := actor.New(testbev.NewBase(t), c, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	in := b.In() // nobody receives yet
	const total = 64 << 20
	type result struct {
		n   int
		err error
	}
	wrote := make(chan result, 1)
	go func() {
		peer.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n := 0
		for n < total {
			k, err := peer.Write(testkit.PatternAt(0, n, 256<<10))
			n += k
			if err != nil {
				wrote <- result{n, err}
				return
			}
		}
		wrote <- result{n, nil}
	}()
	w := testkit.Recv(t, wrote, "the flood to block")
	if !errors.Is(w.err, os.ErrDeadlineExceeded) || w.n > 16<<20 {
		t.Fatalf("the peer wrote %d bytes (%v) to a bufferevent nobody reads, want it blocked far below %d", w.n, w.err, total)
	}
	if n := b.InputLen(); n > actor.DefaultChannelHighWatermark+actor.DefaultMaxRead {
		t.Errorf("InputLen() = %d, want at most the high watermark %d plus one read", n, actor.DefaultChannelHighWatermark)
	}
	peer.CloseWrite()
	got := 0
	r := &chanReader{in: in}
	buf := make([]byte, 64<<10)
	for {
		k, err := r.Read(buf)
		if off := testkit.PatternMismatch(0, got, buf[:k]); off >= 0 {
			t.Fatalf("byte %d of the flood differs", off)
		}
		got += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != w.n {
		t.Errorf("In gave %d bytes, the peer wrote %d", got, w.n)
	}
	if !errors.Is(b.Err(), io.EOF) {
		t.Errorf("Err() = %v, want io.EOF", b.Err())
	}
}

// failingWriteTransport's Write signals writing, then waits until fail
// is closed and fails with a reset; Read waits until Close.
type failingWriteTransport struct {
	writing chan struct{} // receives when Write is waiting
	fail    chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (f *failingWriteTransport) Write(p []byte) (int, error) {
	testkit.Signal(f.writing)
	select {
	case <-f.fail:
		return 0, syscall.ECONNRESET
	case <-f.closed:
		return 0, io.ErrClosedPipe
	}
}

func (f *failingWriteTransport) Read(p []byte) (int, error) {
	<-f.closed
	return 0, io.ErrClosedPipe
}

func (f *failingWriteTransport) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// A Send waiting for room when the output fails returns the write's
// failure even when a close comes before the failure is announced on
// Failed: the close must not pass for the cause. The test fixes that
// order: the Send waits past its own check of the output, the write
// fails, and the bufferevent is freed while the announcement is held
// (HoldFailedAnnounce), so that the Send sees only the close. Without
// stopCause it returns ErrClosed then, every run. (The race that showed
// the bug, a Send that looks when the failure and the close are both
// ready, so that select picks either, did so about one run in 60; this
// order is the one a select cannot pick its way out of.)
func TestSendFailureBeforeClose(t *testing.T) {
	tr := &failingWriteTransport{writing: make(chan struct{}, 1), fail: make(chan struct{}), closed: make(chan struct{})}
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SetWatermark(actor.Write, 0, 4); err != nil {
		t.Fatal(err)
	}
	if err := b.Write([]byte("full")); err != nil {
		t.Fatal(err)
	}
	testkit.Recv(t, tr.writing, "the write to start")
	done := make(chan error, 1)
	go func() { done <- b.Send(context.Background(), []byte("more")) }()
	// The Send counts its piece once past its check of the output, and
	// then waits: the output holds the high watermark.
	waitOutputLen(t, b, 8)
	release := actor.HoldFailedAnnounce(b)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	close(tr.fail)
	deadline := time.Now().Add(testkit.WaitTime)
	for !actor.OutputFailureRecorded(b) {
		if time.Now().After(deadline) {
			t.Fatal("the write's failure was not recorded")
		}
		runtime.Gosched()
	}
	b.Free()
	err = testkit.Recv(t, done, "Send to return after the close")
	release()
	released = true
	testkit.Recv(t, b.Failed(), "Failed once released")
	if !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, actor.ErrClosed) {
		t.Errorf("Send cut by a close after the output failed = %v, want the write's ECONNRESET, not ErrClosed", err)
	}
}
