package conn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// testStr is the sentence libevent's connect tests send, with its NUL.
const testStr = "Much though we might like to think that everything in this world is essentially linked, at the heart of it we are all alone.\x00"

// sendTestStr starts a listener whose every connection writes testStr and
// closes itself once that has been written: libevent's listen_cb.
func sendTestStr(t testing.TB, base *actor.Base, opts actor.Option) *conn.Listener {
	t.Helper()
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: opts}, func(s *conn.Socket) {
		s.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
			if s.Output().Len() == 0 {
				s.Close()
			}
		}})
		if err := s.Write([]byte(testStr)); err != nil {
			t.Errorf("server Write = %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestConnect is libevent's bufferevent_connect{,_defer,_lock,_lock_defer,
// _unlocked_cbs} (cases 16–20): two sockets with no connection enable
// reading, connect to a listener that sends one sentence and closes, and
// each reads the sentence at EOF.
func TestConnect(t *testing.T) {
	variants := []struct {
		name string
		opts actor.Option
	}{
		{"plain", 0},
		{"defer", actor.DeferCallbacks},
		{"lock", actor.ThreadSafe},
		{"lock_defer", actor.ThreadSafe | actor.DeferCallbacks},
		{"unlocked_cbs", actor.ThreadSafe | actor.DeferCallbacks | actor.UnlockCallbacks},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			opts := v.opts | actor.CloseOnFree
			ln := sendTestStr(t, base, opts)
			var reads, connected atomic.Int32
			strings := make(chan []byte, 2)
			for range 2 {
				s, err := conn.New(base, nil, opts)
				if err != nil {
					t.Fatal(err)
				}
				s.SetCallbacks(actor.Callbacks{
					Read: func(*actor.Session) { reads.Add(1) },
					Event: func(s *actor.Session, ev actor.Event, err error) {
						switch {
						case ev == actor.Connected:
							connected.Add(1)
							s.Enable(actor.Read)
						case ev&actor.EOF != 0:
							strings <- testkit.DrainAll(t, s.Input())
							s.Close()
						default:
							t.Errorf("event %v (%v), want Connected, then EOF", ev, err)
						}
					},
				})
				if err := s.Enable(actor.Read); err != nil {
					t.Fatal(err)
				}
				if err := s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
					t.Fatalf("ConnectAddr = %v, want nil", err)
				}
			}
			for range 2 {
				if got := testkit.Recv(t, strings, "the sentence"); !bytes.Equal(got, []byte(testStr)) {
					t.Errorf("read %q at EOF, want %q", got, testStr)
				}
			}
			if n := connected.Load(); n != 2 {
				t.Errorf("%d Connected events, want 2", n)
			}
			if n := reads.Load(); n < 2 {
				t.Errorf("%d read callbacks, want >= 2", n)
			}
		})
	}
}

// TestConnectFail is libevent's bufferevent_connect_fail and
// _connect_fail_eventcb{,_defer} (cases 21, 31, 32): a connect that is
// refused reports exactly one event, Error, and no read or write callback,
// even with both directions enabled.
func TestConnectFail(t *testing.T) {
	variants := []struct {
		name string
		opts actor.Option
	}{
		{"close_defer", actor.CloseOnFree | actor.DeferCallbacks},
		{"eventcb_defer", actor.DeferCallbacks},
		{"eventcb", 0},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			addr := refusedAddr(t)
			s, err := conn.New(base, nil, v.opts)
			if err != nil {
				t.Fatal(err)
			}
			var data, events atomic.Int32
			failed := make(chan error, 1)
			count := func(*actor.Session) { data.Add(1) }
			s.SetCallbacks(actor.Callbacks{
				Read:  count,
				Write: count,
				Event: func(s *actor.Session, ev actor.Event, err error) {
					events.Add(1)
					if ev != actor.Error {
						t.Errorf("event %v, want Error", ev)
					}
					failed <- err
				},
			})
			s.Enable(actor.Read | actor.Write)
			if n := events.Load() + data.Load(); n != 0 {
				t.Errorf("%d callbacks before the connect, want 0", n)
			}
			if err := s.ConnectAddr(context.Background(), "tcp", addr); err != nil {
				t.Fatalf("ConnectAddr = %v, want nil", err)
			}
			if err := testkit.Recv(t, failed, "the Error event"); !isRefused(err) {
				t.Errorf("Error event cause = %v, want connection refused", err)
			}
			// A round trip through the actor: anything it was about to
			// report has been.
			if err := s.Do(func(*actor.Session) {}); err != nil {
				t.Fatal(err)
			}
			if n := events.Load(); n != 1 {
				t.Errorf("%d events, want exactly 1", n)
			}
			if n := data.Load(); n != 0 {
				t.Errorf("%d read/write callbacks, want 0", n)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close = %v, want nil", err)
			}
		})
	}
}

// TestConnectWritesFirst: bytes written before the connect completes are
// sent after it, in order, and a socket without a connection says so.
func TestConnectWritesFirst(t *testing.T) {
	base := testbev.NewBase(t)
	ln := testconn.Listen(t)
	s, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	if s.Conn() != nil {
		t.Errorf("Conn() = %v before connecting, want nil", s.Conn())
	}
	want := testkit.Pattern(100000)
	if err := s.Write(want[:50000]); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	if err := s.ConnectWith(context.Background(), func(ctx context.Context) (net.Conn, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, actor.ErrBusy) {
		t.Errorf("second ConnectAddr while the first is in flight = %v, want ErrBusy", err)
	}
	if err := s.Write(want[50000:]); err != nil {
		t.Fatal(err)
	}
	close(release)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(want))
	if _, err := readFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("peer read bytes that differ from those written before and during the connect")
	}
	if s.Conn() == nil {
		t.Errorf("Conn() = nil after connecting")
	}
}

// TestConnectUnix: a socket over a Unix-domain connection, connected by
// path.
func TestConnectUnix(t *testing.T) {
	base := testbev.NewBase(t)
	path := t.TempDir() + "/s"
	got := make(chan string, 1)
	ln, err := conn.Listen(base, "unix", path, conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
		s.SetWatermark(actor.Read, 5, 0)
		s.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { got <- string(testkit.DrainAll(t, s.Input())) }})
		s.Enable(actor.Read)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("hello"))
	if err := s.ConnectAddr(context.Background(), "unix", path); err != nil {
		t.Fatal(err)
	}
	if g := testkit.Recv(t, got, "hello over unix"); g != "hello" {
		t.Errorf("server read %q, want %q", g, "hello")
	}
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
	silent := testconn.Listen(t)
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
