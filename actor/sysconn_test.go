package actor_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// The socket side door (a *net.TCPConn or *net.UnixConn read and written
// through syscall.RawConn) is an optimisation: these tests check that it
// changes nothing a user can see, on both socket types, in the cases where
// it takes its other branches: the kernel's send buffer full (the rest goes
// to the writer loop), a busy stream (reads batched per hand-off), and a
// write callback that refills the output as fast as the kernel drains it.
// The actor reading its socket itself (park.go) is tested in park_test.go.

// smallBufferedSocket returns a connected pair of network nw whose
// server end, with an 8 KiB send buffer, is b, a bufferevent writing at
// most 16 KiB at a time, and whose client end c has an 8 KiB receive
// buffer: a few KiB the peer does not read fill the kernel.
func smallBufferedSocket(t *testing.T, nw string) (c net.Conn, b *actor.Bufferevent) {
	t.Helper()
	c, s := testconn.Pair(t, nw)
	type buffered interface {
		SetWriteBuffer(int) error
		SetReadBuffer(int) error
	}
	s.(buffered).SetWriteBuffer(8 << 10)
	c.(buffered).SetReadBuffer(8 << 10)
	b, err := actor.New(testbev.NewBase(t), s, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Writes far larger than so small a send buffer make Linux's TCP
	// crawl (4 MiB takes about 30 s, plain Go's net.Conn alike), so the
	// writes are kept to the size such a socket wants; see SetMaxWrite.
	if err := b.SetMaxWrite(16 << 10); err != nil {
		t.Fatal(err)
	}
	return c, b
}

// A write the kernel cannot take at once is finished by the writer loop
// when the actor wants to read: the actor then waits in its socket for
// data while the writer loop waits for room, and the writer loop's result
// must kick it out of that wait. With reading disabled, the actor waits
// for room itself (see TestSocketWaitsForRoom); either way every byte
// arrives in order and the write callback runs once the output drained.
func TestSocketKernelBufferFull(t *testing.T) {
	for _, tc := range []struct {
		nw      string
		reading bool
	}{{"tcp", false}, {"unix", false}, {"tcp", true}, {"unix", true}} {
		nw := tc.nw
		t.Run(fmt.Sprintf("%s/reading=%v", nw, tc.reading), func(t *testing.T) {
			// Small kernel buffers, and a peer that does not read yet,
			// so the direct write is cut short and the writer loop must
			// wait for room.
			c, b := smallBufferedSocket(t, nw)
			drained := make(chan struct{}, 1)
			b.SetCallbacks(actor.Callbacks{Write: func(*actor.Session) {
				testkit.Signal(drained)
			}})
			if tc.reading {
				b.Enable(actor.Read)
			}
			before := writerLoops()
			const total = 4 << 20
			want := testkit.Pattern(total)
			if err := b.Write(want); err != nil {
				t.Fatal(err)
			}
			// Nobody reads: the kernel takes a few KiB, and the rest must
			// go to a writer loop, which then waits for room; or, not
			// reading, the actor waits for room itself.
			deadline := time.Now().Add(testkit.WaitTime)
			for tc.reading && writerLoops() <= before {
				if time.Now().After(deadline) {
					t.Fatal("the kernel buffer filled but no writer loop was started")
				}
				runtime.Gosched()
			}
			for n := b.OutputLen(); n == total || n == 0; n = b.OutputLen() {
				if time.Now().After(deadline) {
					t.Fatalf("OutputLen() = %d: the direct write did not leave the rest queued", n)
				}
				runtime.Gosched()
			}
			got := make([]byte, 0, total)
			buf := make([]byte, 64<<10)
			for len(got) < total {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("read after %d bytes: %v", len(got), err)
				}
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the %d bytes read differ from those written", total)
			}
			testkit.Recv(t, drained, "the write callback once the output drained")
			if n := b.OutputLen(); n != 0 {
				t.Errorf("OutputLen() = %d after everything was read, want 0", n)
			}
		})
	}
}

// A socket's actor that does not want to read waits for room in its
// socket itself when the kernel's buffer is full, instead of handing the
// rest to the writer loop, and stays reachable there: a Do is answered
// and a write timeout fires while it waits, and Enable(Read) makes it read
// what the peer sends at once (the writer loop then waits for room), the
// output going out whole and in order once the peer reads.
func TestSocketWaitsForRoom(t *testing.T) {
	for _, nw := range []string{"tcp", "unix"} {
		t.Run(nw, func(t *testing.T) {
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait) // after the Base's cleanup, which frees b
			c, b := smallBufferedSocket(t, nw)
			events := make(chan actor.Event, 4)
			reads := make(chan []byte, 4)
			b.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					p := make([]byte, s.Input().Len())
					s.Input().Read(p)
					reads <- p
				},
				Event: func(_ *actor.Session, ev actor.Event, _ error) { events <- ev },
			})
			before := writerLoops()
			const total = 1 << 20
			want := testkit.Pattern(total)
			if err := b.Write(want); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(testkit.WaitTime)
			for n := b.OutputLen(); n == total || n == 0; n = b.OutputLen() {
				if time.Now().After(deadline) {
					t.Fatalf("OutputLen() = %d: the direct write did not leave the rest queued", n)
				}
				runtime.Gosched()
			}

			// The actor waits for room: a post reaches it there.
			done := make(chan int, 1)
			wg.Go(func() {
				b.Do(func(s *actor.Session) { done <- s.Output().Len() })
			})
			if n := testkit.Recv(t, done, "a Do while the actor waits for room"); n == 0 {
				t.Fatal("the output drained with nobody reading")
			}
			// So does its timer: the write timeout, which disables writing.
			b.SetTimeouts(0, 20*time.Millisecond)
			if ev := testkit.Recv(t, events, "the write timeout"); ev != actor.Timeout|actor.Writing {
				t.Fatalf("event %v, want Timeout|Writing", ev)
			}
			if n := writerLoops() - before; n != 0 {
				t.Fatalf("%d writer loops ran while the actor did not read, want 0", n)
			}

			// Writing again, and reading: what the peer sends arrives while
			// the output still waits for room, which a writer loop now
			// waits for.
			b.SetTimeouts(0, 0)
			b.Enable(actor.Read | actor.Write)
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if p := testkit.Recv(t, reads, "the peer's bytes while the output waits"); string(p) != "ping" {
				t.Fatalf("read %q, want %q", p, "ping")
			}
			for writerLoops() <= before {
				if time.Now().After(deadline) {
					t.Fatal("reading, the actor started no writer loop for the rest")
				}
				runtime.Gosched()
			}
			c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
			got := make([]byte, total)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the %d bytes read differ from those written", total)
			}
		})
	}
}

func TestSocketBusyStreamRead(t *testing.T) {
	for _, nw := range []string{"tcp", "unix"} {
		t.Run(nw, func(t *testing.T) {
			c, s := testconn.Pair(t, nw)
			b, err := actor.New(testbev.NewBase(t), s, 0)
			if err != nil {
				t.Fatal(err)
			}
			const high = 64 << 10
			if err := b.SetWatermark(actor.Read, 0, high); err != nil {
				t.Fatal(err)
			}
			const total = 8 << 20
			var (
				got     bytes.Buffer
				maxSeen int
				done    = make(chan struct{})
			)
			b.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					maxSeen = max(maxSeen, s.Input().Len())
					got.ReadFrom(s.Input())
				},
				Event: func(s *actor.Session, ev actor.Event, err error) {
					if ev&actor.EOF != 0 {
						close(done)
					}
				},
			})
			b.Enable(actor.Read)
			want := testkit.Pattern(total)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if cw, ok := c.(interface{ CloseWrite() error }); ok && err == nil {
					err = cw.CloseWrite()
				}
				werr <- err
			}()
			if err := testkit.Recv(t, werr, "the peer's write"); err != nil {
				t.Fatal(err)
			}
			testkit.Recv(t, done, "EOF")
			var result []byte
			var seen int
			b.Do(func(*actor.Session) { result, seen = got.Bytes(), maxSeen })
			if !bytes.Equal(result, want) {
				t.Fatalf("read %d bytes, not the %d written", len(result), total)
			}
			// The input holds at most the high watermark plus one read.
			if seen > high+actor.DefaultMaxRead {
				t.Errorf("input reached %d bytes, above the high watermark %d plus one read", seen, high)
			}
		})
	}
}

// A write callback that refills the output every time it drains must not
// keep the actor from its mailbox, however fast the kernel takes the bytes.
func TestSocketWriteCallbackYields(t *testing.T) {
	c, s := testconn.Pair(t, "tcp")
	b, err := actor.New(testbev.NewBase(t), s, 0)
	if err != nil {
		t.Fatal(err)
	}
	const chunk, total = 16 << 10, 64 << 20
	var (
		calls    atomic.Int64
		sent     int
		started  = make(chan struct{})
		finished = make(chan struct{})
	)
	block := make([]byte, chunk)
	b.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		if calls.Add(1) == 1 {
			close(started)
		}
		if sent < total {
			s.Write(block)
			sent += chunk
		} else if sent == total {
			sent++
			close(finished)
		}
	}})
	rerr := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c, total)
		rerr <- err
	}()
	b.Trigger(actor.Write, 0)
	testkit.Recv(t, started, "the first write callback")
	posted := calls.Load()
	ran := make(chan int64, 1)
	b.Do(func(*actor.Session) { ran <- calls.Load() })
	between := testkit.Recv(t, ran, "Do while the callback streams") - posted
	// Without a bound the actor would run the callback for all 4096
	// chunks before it looked at its mail again.
	if between > 256 {
		t.Errorf("%d write callbacks ran before a Do posted during them", between)
	}
	testkit.Recv(t, finished, "the whole stream")
	if err := testkit.Recv(t, rerr, "the reader"); err != nil {
		t.Fatal(err)
	}
}
