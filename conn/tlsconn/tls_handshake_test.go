package tlsconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of tls.go's handshake: a failed handshake, a client whose server
// never handshakes (libevent's ssl/bufferevent_timeout), and the
// handshake timeout.

// TestTLSHandshakeFailure: verification is on by default and TLS 1.2 is
// the minimum, and a server needs a certificate; a failed handshake is one Error event with the TLS cause,
// kept as the TLS error, and no data callback.
func TestTLSHandshakeFailure(t *testing.T) {
	scfg, ccfg := testcert.Configs(t, "bev.test")
	old := scfg.Clone()
	old.MaxVersion = tls.VersionTLS11
	cases := []struct {
		name       string
		server     *tls.Config
		client     *tls.Config
		wantVerify bool
	}{
		{"untrusted", scfg, &tls.Config{ServerName: "bev.test"}, true},
		{"wrong name", scfg, &tls.Config{RootCAs: ccfg.RootCAs, ServerName: "other.test"}, true},
		{"TLS 1.1", old, ccfg, false},
		{"no server certificate", &tls.Config{}, ccfg, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			c1, c2 := testconn.TCPConns(t)
			server, err := tlsconn.New(base, c2, tc.server, tlsconn.Accepting, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()
			server.Enable(actor.Read | actor.Write)
			s, err := tlsconn.New(base, c1, tc.client, tlsconn.Connecting, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			var data, events atomic.Int32
			failed := make(chan error, 1)
			count := func(*actor.Session) { data.Add(1) }
			s.SetCallbacks(actor.Callbacks{Read: count, Write: count, Event: func(_ *actor.Session, ev actor.Event, err error) {
				events.Add(1)
				if ev != actor.Error {
					t.Errorf("event %v, want Error", ev)
				}
				failed <- err
			}})
			s.Enable(actor.Read | actor.Write)
			s.Write([]byte("never sent"))
			err = testkit.Recv(t, failed, "the handshake failure")
			var ve *tls.CertificateVerificationError
			if tc.wantVerify && !errors.As(err, &ve) {
				t.Errorf("Error cause = %v, want a certificate verification error", err)
			}
			if tlsErr := tlsconn.Of(s).Err(); tlsErr == nil {
				t.Errorf("Err() = nil after a failed handshake, want the cause")
			}
			s.Do(func(*actor.Session) {})
			if n, d := events.Load(), data.Load(); n != 1 || d != 0 {
				t.Errorf("%d events and %d data callbacks, want 1 and 0", n, d)
			}
			if st := tlsconn.Of(s).State(); st != tlsconn.Connecting {
				t.Errorf("State() = %v after a failed handshake, want Connecting", st)
			}
		})
	}
}

// TestTLSTimeout is libevent's ssl/bufferevent_timeout: the server socket
// is never enabled, so it never handshakes; the client has read and write
// timeouts, and sees exactly one timeout and no Connected. The second
// variant connects by address to a listener that never answers.
func TestTLSTimeout(t *testing.T) {
	for _, byAddr := range []bool{false, true} {
		t.Run(fmt.Sprintf("connect_addr=%v", byAddr), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			opts := actor.DeferCallbacks | actor.CloseOnFree
			var s *conn.Socket
			if byAddr {
				ln := testconn.Listen(t)
				var err error
				if s, err = tlsconn.New(base, nil, ccfg, tlsconn.Connecting, opts); err != nil {
					t.Fatal(err)
				}
				if err := s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
					t.Fatal(err)
				}
				peer, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer peer.Close()
			} else {
				c1, c2 := testconn.TCPConns(t)
				server, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer server.Close()
				if s, err = tlsconn.New(base, c1, ccfg, tlsconn.Connecting, opts); err != nil {
					t.Fatal(err)
				}
			}
			var cnt counter
			finished := make(chan *actor.Bufferevent, 1)
			s.SetTimeouts(200*time.Millisecond, 200*time.Millisecond)
			s.SetCallbacks(actor.Callbacks{Read: cnt.respond(t, finished), Event: cnt.event(t, finished, false)})
			s.Enable(actor.Read | actor.Write)
			s.Write([]byte("1\n"))
			testkit.Recv(t, s.Done(), "the timeout to close the client")
			if n := cnt.timeouts.Load(); n != 1 {
				t.Errorf("%d timeouts, want 1", n)
			}
			if c, cl, e := cnt.connected.Load(), cnt.closed.Load(), cnt.errored.Load(); c != 0 || cl != 0 || e != 0 {
				t.Errorf("%d Connected, %d EOF, %d errors, want none", c, cl, e)
			}
		})
	}
}

// timesOutOnClock bounds s's handshakes at an hour, runs start (which
// begins a handshake that stalls), and checks that the handshake fails,
// with an error wrapping actor.ErrTimeout, once clk has moved that hour
// on: the real clock is an hour away.
func timesOutOnClock(t *testing.T, clk *testbev.ManualClock, s *conn.Socket, start func(), what string) {
	t.Helper()
	if err := tlsconn.Of(s).SetHandshakeTimeout(time.Hour); err != nil {
		t.Fatal(err)
	}
	events := make(chan actor.EventInfo, 4)
	s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		events <- actor.EventInfo{Event: ev, Err: err}
	}})
	start()
	testbev.WaitArmed(t, clk)
	clk.Advance(time.Hour)
	e := testkit.Recv(t, events, what)
	if e.Event&actor.Error == 0 || !errors.Is(e.Err, actor.ErrTimeout) {
		t.Errorf("event %v (%v), want Error wrapping actor.ErrTimeout", e.Event, e.Err)
	}
}

// TestHandshakeTimeoutFollowsBaseClock: the handshake timeout is measured
// on the Base's clock, as the socket's read and write timeouts are: with
// a clock the test moves by hand, a handshake stalled mid-ClientHello
// fails once the clock has moved the timeout on, whatever the real time
// (it was armed on the real clock). TestHandshakeTimeout checks, in a
// synctest bubble, that it does not fail before.
func TestHandshakeTimeoutFollowsBaseClock(t *testing.T) {
	scfg, _ := testcert.Configs(t, "bev.test")
	clk := testbev.NewManualClock()
	c1, c2 := net.Pipe()
	defer c1.Close()
	s, err := tlsconn.New(testbev.NewBaseClock(t, clk), c2, scfg, tlsconn.Accepting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	timesOutOnClock(t, clk, s, func() {
		s.Enable(actor.Read)                                  // starts the handshake
		if _, err := c1.Write([]byte{22, 3, 1}); err != nil { // a ClientHello's first bytes, no more
			t.Fatal(err)
		}
	}, "the handshake's timeout on the Base's clock")
}

// TestDialHandshakeTimeoutFollowsBaseClock: a client connecting by
// address handshakes right after its dial, on the context the bufferevent
// gave the dial, which carries the Base's clock: against a server that
// never answers, the handshake fails once that clock has moved the
// timeout on (it was on the real clock).
func TestDialHandshakeTimeoutFollowsBaseClock(t *testing.T) {
	_, ccfg := testcert.Configs(t, "bev.test")
	clk := testbev.NewManualClock()
	silent := testconn.Listen(t)
	s, err := tlsconn.New(testbev.NewBaseClock(t, clk), nil, ccfg, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	timesOutOnClock(t, clk, s, func() {
		if err := s.ConnectAddr(context.Background(), "tcp", silent.Addr().String()); err != nil {
			t.Fatal(err)
		}
		c, err := silent.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}, "the dial's handshake timeout on the Base's clock")
}

// TestHandshakeTimeout: a TLS server socket whose client stops in the
// middle of its ClientHello fails its handshake after the handshake
// timeout (DefaultHandshakeTimeout unless set), not before, with one
// Error whose cause matches actor.ErrTimeout and os.ErrDeadlineExceeded,
// and the connection is closed; a timeout of 0 sets no bound. The
// connection is an in-memory pipe, so that the synctest bubble's clock
// stands for the real one.
func TestHandshakeTimeout(t *testing.T) {
	scfg, _ := testcert.Configs(t, "bev.test") // outside the bubble, whose clock reads the year 2000
	cases := []struct {
		name string
		set  time.Duration // -1: not set
		want time.Duration // 0: none
	}{
		{"default", -1, tlsconn.DefaultHandshakeTimeout},
		{"3s", 3 * time.Second, 3 * time.Second},
		{"none", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := actor.NewBase()
				defer base.Close()
				c1, c2 := net.Pipe()
				defer c1.Close()
				s, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, actor.CloseOnFree)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if tc.set >= 0 {
					if err := tlsconn.Of(s).SetHandshakeTimeout(tc.set); err != nil {
						t.Fatal(err)
					}
				}
				if got := tlsconn.Of(s).HandshakeTimeout(); got != tc.want {
					t.Errorf("HandshakeTimeout() = %v, want %v", got, tc.want)
				}
				events := make(chan actor.EventInfo, 4)
				s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
					events <- actor.EventInfo{Event: ev, Err: err}
				}})
				s.Enable(actor.Read)
				start := time.Now()
				if _, err := c1.Write([]byte{22, 3, 1}); err != nil { // a ClientHello's first bytes, no more
					t.Fatal(err)
				}
				limit := tc.want
				if limit == 0 {
					limit = time.Minute
				}
				time.Sleep(limit - time.Millisecond - time.Since(start))
				synctest.Wait()
				if len(events) != 0 {
					t.Fatalf("event %v after %v, want none yet", <-events, time.Since(start))
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if tc.want == 0 {
					if len(events) != 0 {
						t.Errorf("event %v after a minute with no bound, want none", <-events)
					}
					return
				}
				if len(events) != 1 {
					t.Fatalf("%d events after %v, want 1", len(events), tc.want)
				}
				e := <-events
				if e.Event != actor.Error || !errors.Is(e.Err, actor.ErrTimeout) || !errors.Is(e.Err, os.ErrDeadlineExceeded) {
					t.Errorf("event %v (%v), want Error wrapping actor.ErrTimeout", e.Event, e.Err)
				}
				if n, err := c1.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Errorf("client read %d, %v after the timeout, want the connection closed", n, err)
				}
			})
		})
	}
	s, err := tlsconn.New(nil, nil, nil, tlsconn.Connecting, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := tlsconn.Of(s).SetHandshakeTimeout(-time.Second); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("SetHandshakeTimeout(-1s) = %v, want ErrInvalid", err)
	}
	if err := tlsconn.Of(nil).SetHandshakeTimeout(time.Second); !errors.Is(err, tlsconn.ErrNotTLS) {
		t.Errorf("SetHandshakeTimeout on a plain socket = %v, want ErrNotTLS", err)
	}
}

// TestCloseMidHandshake: Close while a TLS socket's handshake waits for
// the rest of a ClientHello returns nil. crypto/tls closes the connection
// when the handshake's context is cancelled, before the socket closes its
// transport itself: that finds it closed, which is what Close asked for
// (it once returned "use of closed network connection").
func TestCloseMidHandshake(t *testing.T) {
	scfg, _ := testcert.Configs(t, "bev.test")
	c1, c2 := testconn.TCPConns(t)
	s, err := tlsconn.New(testbev.NewBase(t), c2, scfg, tlsconn.Accepting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan actor.EventInfo, 4)
	s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		events <- actor.EventInfo{Event: ev, Err: err}
	}})
	s.Enable(actor.Read)                                  // starts the handshake
	if _, err := c1.Write([]byte{22, 3, 1}); err != nil { // a ClientHello's first bytes, no more
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close mid-handshake = %v, want nil", err)
	}
	if got := testkit.Pending(events); len(got) != 0 {
		t.Errorf("events after Close mid-handshake: %v, want none", got)
	}
	// The peer sees the connection closed, not a handshake reply.
	c1.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if n, err := c1.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("peer read %d, %v after Close mid-handshake, want the end", n, err)
	}
}
