package bev_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// drainClient is one client of the drain test: a plain TCP connection
// with a writer that sends one chunk, waits for the test's go-ahead and
// then streams its pattern, keeping at most drainWindow bytes not yet
// echoed, and a reader that checks the echo byte by byte.
type drainClient struct {
	id       int
	c        net.Conn
	sent     atomic.Int64
	received atomic.Int64
	progress chan struct{} // buffered(1): the reader got bytes
	stop     chan struct{} // closed by the reader at EOF or error
	done     chan struct{} // closed once both goroutines returned and c is closed

	// Set by the reader before it closes stop.
	readErr  error // nil after a clean EOF
	mismatch int   // offset of the first wrong byte, or -1
	// Set by the writer before it returns.
	writeErr error // nil when it stopped because the reader had stopped
}

// The window is well below a loopback receive window, so whatever the
// server has written reaches the client's kernel at once and never waits
// in the server's (see TestGracefulDrainMidTransfer for why that matters).
const (
	drainWindow = 32 << 10 // bytes a client has sent and not yet had back
	drainChunk  = 8 << 10
	drainCap    = 4 << 20 // most a client sends, however late the drain
)

// run starts the reader and the writer and closes the connection once
// both have returned. The reader reports on echoed at the first byte back,
// and on streaming once the transfer after begin is well under way.
func (dc *drainClient) run(begin <-chan struct{}, echoed, streaming chan<- int) {
	var wg sync.WaitGroup
	wg.Go(func() { dc.read(echoed, streaming) })
	wg.Go(func() { dc.write(begin) })
	wg.Wait()
	dc.c.Close()
	close(dc.done)
}

func (dc *drainClient) read(echoed, streaming chan<- int) {
	defer close(dc.stop)
	dc.mismatch = -1
	buf := make([]byte, 16<<10)
	for {
		dc.c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
		n, err := dc.c.Read(buf)
		if n > 0 {
			off := int(dc.received.Load())
			if dc.mismatch < 0 {
				dc.mismatch = testkit.PatternMismatch(dc.id, off, buf[:n])
			}
			got := dc.received.Add(int64(n))
			testkit.Signal(dc.progress)
			if off == 0 {
				echoed <- dc.id
			}
			if mark := int64(drainChunk + 2*drainWindow); off < int(mark) && got >= mark {
				streaming <- dc.id
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dc.readErr = err
			}
			// Stop writing at once: a write blocked on a full window
			// returns with a deadline error.
			dc.c.SetWriteDeadline(time.Now())
			return
		}
	}
}

func (dc *drainClient) write(begin <-chan struct{}) {
	for off := 0; off < drainCap; {
		if off == drainChunk {
			select {
			case <-begin:
			case <-dc.stop:
				return
			}
		}
		for int64(off)-dc.received.Load() >= drainWindow {
			select {
			case <-dc.progress:
			case <-dc.stop:
				return
			}
		}
		select {
		case <-dc.stop:
			return
		default:
		}
		dc.c.SetWriteDeadline(time.Now().Add(testkit.WaitTime))
		n, err := dc.c.Write(testkit.PatternAt(dc.id, off, drainChunk))
		off += n
		dc.sent.Add(int64(n))
		if err != nil {
			select {
			case <-dc.stop:
			default:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					dc.writeErr = err
				}
			}
			return
		}
	}
}

// drainServerConn is one accepted connection of the drain test.
type drainServerConn struct {
	s        *conn.Socket
	accepted atomic.Int64 // bytes the read callback moved to the output

	mu     sync.Mutex // guards following
	events []actor.EventInfo
}

// TestGracefulDrainMidTransfer has 100 clients stream to a bev echo server
// and, once every connection has echoed something, stops the server from
// accepting more bytes (Disable(Read)) and drains every accepted socket
// while bytes are in flight both ways. Each client must get back exactly
// the bytes the server accepted from it, as a prefix of what it sent,
// followed by EOF, and stops writing at that EOF.
//
// Drain closes the socket right after its half-close, while the client's
// last bytes sit unread in the server's kernel: that close sends RST, and
// the kernel drops whatever output it had not yet sent. These clients read
// promptly and keep a small window, so nothing is waiting there; a client
// that reads slowly loses the tail of its echo, silently or with
// ECONNRESET (reported as a bug, with a reproduction, outside this suite).
func TestGracefulDrainMidTransfer(t *testing.T) {
	const conns = 100
	base := testbev.NewBase(t)

	var mu sync.Mutex // guards following
	accepted := make(map[string]*drainServerConn)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			sc := &drainServerConn{s: s}
			s.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					n := s.Input().Len()
					s.Output().MoveFrom(s.Input())
					sc.accepted.Add(int64(n))
				},
				Event: func(s *actor.Session, ev actor.Event, err error) {
					sc.mu.Lock()
					sc.events = append(sc.events, actor.EventInfo{Event: ev, Err: err})
					sc.mu.Unlock()
				},
			})
			mu.Lock()
			accepted[s.Conn().RemoteAddr().String()] = sc
			mu.Unlock()
			s.Enable(actor.Read | actor.Write)
		})
	if err != nil {
		t.Fatal(err)
	}

	begin := make(chan struct{})
	echoed := make(chan int, conns)
	streaming := make(chan int, conns)
	clients := make([]*drainClient, conns)
	for i := range clients {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), testkit.WaitTime)
		if err != nil {
			t.Fatal(err)
		}
		dc := &drainClient{id: i, c: c, progress: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		clients[i] = dc
		go dc.run(begin, echoed, streaming)
		t.Cleanup(func() { c.Close(); <-dc.done })
	}
	for range conns {
		testkit.Recv(t, echoed, "every connection to echo its first chunk")
	}
	close(begin)
	for range conns {
		testkit.Recv(t, streaming, "every connection to be streaming")
	}

	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	if n != conns {
		t.Fatalf("server accepted %d connections, want %d", n, conns)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, sc := range accepted {
		wg.Go(func() {
			if err := sc.s.Disable(actor.Read); err != nil {
				t.Errorf("Disable(Read) = %v, want nil", err)
			}
			if err := sc.s.Drain(ctx); err != nil {
				t.Errorf("Drain = %v, want nil", err)
			}
		})
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	testkit.Recv(t, drained, "every server socket to drain")
	t.Logf("drained %d connections in %v", conns, time.Since(start).Round(time.Millisecond))

	var total, lost int64
	cut := 0 // connections with bytes sent that the server never accepted
	for _, dc := range clients {
		testkit.Recv(t, dc.done, fmt.Sprintf("client %d to end", dc.id))
		sc := accepted[dc.c.LocalAddr().String()]
		if sc == nil {
			t.Errorf("client %d: no server connection from %v", dc.id, dc.c.LocalAddr())
			continue
		}
		acc, got, sent := sc.accepted.Load(), dc.received.Load(), dc.sent.Load()
		total += acc
		if sent > acc {
			cut++
		}
		if got != acc || acc > sent {
			t.Errorf("client %d: got back %d bytes, want the %d the server accepted (of %d sent); read ended with %v, write with %v",
				dc.id, got, acc, sent, dc.readErr, dc.writeErr)
			lost += acc - got
		}
		if dc.mismatch >= 0 {
			t.Errorf("client %d: echo differs from what it sent at byte %d", dc.id, dc.mismatch)
		}
		// A read already under way when reading was disabled may return
		// the client's FIN, which the client sends once it has read the
		// server's: that EOF is reported even though reading is off.
		sc.mu.Lock()
		if n := len(sc.events); n > 1 || n == 1 && sc.events[0].Event != actor.Reading|actor.EOF {
			t.Errorf("client %d: server socket events %v, want none, or one Reading|EOF", dc.id, sc.events)
		}
		sc.mu.Unlock()
		if dc.readErr != nil {
			t.Errorf("client %d: read ended with %v, want EOF after the last byte", dc.id, dc.readErr)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d accepted bytes never reached their clients", lost, total)
	}
	if cut == 0 {
		t.Errorf("no connection had bytes in flight when the server stopped reading, want the drain mid-transfer")
	}
	t.Logf("%d bytes accepted and echoed; %d of %d connections cut mid-transfer", total, cut, conns)
	closeAndCheck(t, base)
}
