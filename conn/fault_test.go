package conn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// TestPeerReset: a peer that resets the connection mid-stream (linger 0,
// then close) gives an Error event with the reset, not EOF, and nothing
// leaks.
func TestPeerReset(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	s, err := conn.New(base, c2, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	chunk := testkit.Pattern(16 << 10)
	errs := make(chan error, 1)
	var eofs atomic.Int32
	s.SetCallbacks(actor.Callbacks{
		Write: func(s *actor.Session) { s.Write(chunk) }, // keep streaming
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.EOF != 0 {
				eofs.Add(1)
			}
			if ev&actor.Error != 0 {
				errs <- err
				s.Close()
			}
		},
	})
	s.Enable(actor.Read | actor.Write)
	s.Write(chunk)
	buf := make([]byte, 64<<10)
	if _, err := readFull(c1, buf); err != nil {
		t.Fatal(err)
	}
	c1.SetLinger(0)
	c1.Close()
	err = testkit.Recv(t, errs, "the Error event")
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Error event cause = %v, want a reset or broken pipe", err)
	}
	<-s.Done()
	if n := eofs.Load(); n != 0 {
		t.Errorf("%d EOF events after a reset, want 0", n)
	}
}

// TestPeerNeverReads: against a peer that never reads, the output grows
// only by what is written (Write never blocks), while Send blocks at the
// write high watermark; Close still returns at once.
func TestPeerNeverReads(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	c1.SetWriteBuffer(32 << 10)
	c2.SetReadBuffer(32 << 10)
	s, err := conn.New(base, c1, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	const total = 4 << 20
	if err := s.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWatermark(actor.Write, 0, 64<<10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Send(ctx, []byte("more")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send over the high watermark = %v, want it to block until the deadline", err)
	}
	if n := s.OutputLen(); n > total || n < 64<<10 {
		t.Errorf("OutputLen() = %d, want between the high watermark and the %d written", n, total)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if err := testkit.Recv(t, closed, "Close with a blocked writer"); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
}

// TestSlowLoris: a peer that trickles bytes keeps a read timeout at bay
// only while it sends; once it stalls, exactly one Reading|Timeout comes,
// after every byte it sent.
func TestSlowLoris(t *testing.T) {
	base := testbev.NewBase(t)
	c1, c2 := testconn.TCPConns(t)
	s, err := conn.New(base, c2, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	arrived := make(chan struct{}, 1)
	var got, timeouts atomic.Int32
	var last atomic.Int64
	timedOut := make(chan time.Time, 1)
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			got.Add(int32(len(testkit.DrainAll(t, s.Input()))))
			last.Store(time.Now().UnixNano())
			testkit.Signal(arrived)
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev != actor.Reading|actor.Timeout || !errors.Is(err, actor.ErrTimeout) {
				t.Errorf("event %v (%v), want Reading|Timeout", ev, err)
			}
			timeouts.Add(1)
			timedOut <- time.Now()
		},
	})
	s.SetTimeouts(timeout, 0)
	s.Enable(actor.Read)
	for range 5 {
		if _, err := c1.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		testkit.Recv(t, arrived, "a trickled byte")
	}
	at := testkit.Recv(t, timedOut, "the read timeout")
	if n := got.Load(); n != 5 {
		t.Errorf("%d bytes before the timeout, want 5", n)
	}
	if idle := at.Sub(time.Unix(0, last.Load())); idle < timeout*3/4 {
		t.Errorf("timeout %v after the last byte, want about %v", idle, timeout)
	}
	s.Do(func(*actor.Session) {})
	if n := timeouts.Load(); n != 1 {
		t.Errorf("%d timeouts, want 1 (reading is disabled by the first)", n)
	}
	if s.Enabled()&actor.Read != 0 {
		t.Errorf("Read still enabled after the timeout")
	}
	s.Close()
}

// TestCloseWhileConnecting: Close during a layer's handshake that never
// completes (TLS's is tested in conn/tlsconn), or a lookup that never
// answers, returns promptly, reports no
// event and leaks nothing. Ending the connect's context instead reports
// one Error with the context's cause, and the lookup error is kept.
func TestCloseWhileConnecting(t *testing.T) {
	blocked := make(chan struct{}, 1)
	stuck := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		testkit.Signal(blocked)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cases := []struct {
		name    string
		connect func(ctx context.Context, s *conn.Socket) error
		tls     bool // through a layer whose handshake never ends
	}{
		{"lookup", func(ctx context.Context, s *conn.Socket) error {
			return s.ConnectHostname(ctx, stuck, "tcp", "stuck.example.", 80)
		}, false},
		{"handshake", func(ctx context.Context, s *conn.Socket) error {
			return s.ConnectAddr(ctx, "tcp", silent.Addr().String())
		}, true},
	}
	for _, tc := range cases {
		for _, byCtx := range []bool{false, true} {
			name := tc.name + "/close"
			if byCtx {
				name = tc.name + "/ctx"
			}
			t.Run(name, func(t *testing.T) {
				base := testbev.NewBase(t)
				var s *conn.Socket
				var err error
				if tc.tls {
					s, err = conn.NewLayered(base, nil, stuckLayer{}, actor.CloseOnFree)
				} else {
					s, err = conn.New(base, nil, actor.CloseOnFree)
				}
				if err != nil {
					t.Fatal(err)
				}
				events := make(chan actor.EventInfo, 4)
				s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
					events <- actor.EventInfo{Event: ev, Err: err}
				}})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if err := tc.connect(ctx, s); err != nil {
					t.Fatal(err)
				}
				if tc.tls {
					c, err := silent.Accept()
					if err != nil {
						t.Fatal(err)
					}
					defer c.Close()
				} else {
					testkit.Recv(t, blocked, "the lookup to start")
				}
				if byCtx {
					cancel()
					e := testkit.Recv(t, events, "the Error event")
					if e.Event != actor.Error || !errors.Is(e.Err, context.Canceled) {
						t.Errorf("event %v (%v), want Error with context.Canceled", e.Event, e.Err)
					}
					if !tc.tls && s.DNSError() == nil {
						t.Errorf("DNSError() = nil after a cancelled lookup, want the cause")
					}
				}
				start := time.Now()
				if err := s.Close(); err != nil && !errors.Is(err, io.EOF) {
					t.Errorf("Close = %v, want nil", err)
				}
				if d := time.Since(start); d > time.Second {
					t.Errorf("Close took %v with a connect in flight, want it prompt", d)
				}
				if len(events) != 0 {
					t.Errorf("events after Close: %v, want none", <-events)
				}
			})
		}
	}
}

// stuckLayer is a conn.Layer whose handshake waits for its context: a
// peer that never answers.
type stuckLayer struct{}

func (stuckLayer) Wrap(c net.Conn, _ string) (actor.Transport, error) {
	return stuckConn{c}, nil
}

type stuckConn struct{ net.Conn }

func (c stuckConn) Handshake(ctx context.Context) error {
	<-ctx.Done()
	c.Close()
	return ctx.Err()
}
