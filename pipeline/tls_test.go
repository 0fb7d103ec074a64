package pipeline_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

var (
	certOnce             sync.Once
	serverCfg, clientCfg *tls.Config
)

// tlsConfigs returns a server config with a fresh self-signed certificate
// for "bev.test" and a client config that trusts it. The certificate is
// made once for the package and is valid from then on, so call it outside
// any synctest bubble, whose clock reads the year 2000.
func tlsConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	certOnce.Do(func() {
		c, err := testcert.New("bev.test")
		if err != nil {
			panic(err)
		}
		serverCfg, clientCfg = c.Configs()
	})
	return serverCfg, clientCfg
}

// tlsPair returns a TLS client over a and a TLS server over b.
func tlsPair(t testing.TB, a, b *actor.Bufferevent, opts pipeline.TLSOptions) (client, server *actor.Bufferevent) {
	t.Helper()
	scfg, ccfg := tlsConfigs(t)
	client, err := pipeline.NewTLSClient(a, ccfg, opts)
	if err != nil {
		t.Fatalf("NewTLSClient = %v", err)
	}
	server, err = pipeline.NewTLSServer(b, scfg, opts)
	if err != nil {
		t.Fatalf("NewTLSServer = %v", err)
	}
	return client, server
}

// countSide is one side of libevent's ssl exchange: it reads a number per
// line and answers n+1; the side that reads 1001 finishes, by close or by
// drain.
type countSide struct {
	connected chan struct{}
	events    chan actor.EventInfo
	last      chan struct{}
	finish    func(s *actor.Session)
}

func newCountSide(finish func(s *actor.Session)) *countSide {
	return &countSide{
		connected: make(chan struct{}, 1),
		events:    make(chan actor.EventInfo, 8),
		last:      make(chan struct{}, 1),
		finish:    finish,
	}
}

func (c *countSide) callbacks(t testing.TB) actor.Callbacks {
	return actor.Callbacks{
		Read: func(s *actor.Session) {
			for {
				line, err := s.Input().ReadLine(actor.EOLLF)
				if err != nil {
					return
				}
				n, err := strconv.Atoi(string(line))
				if err != nil {
					t.Errorf("read %q, want a number", line)
					return
				}
				if n == 1001 {
					c.last <- struct{}{}
					c.finish(s)
					return
				}
				fmt.Fprintf(s.Output(), "%d\n", n+1)
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.Connected != 0 {
				c.connected <- struct{}{}
				return
			}
			c.events <- actor.EventInfo{Event: ev, Err: err}
		},
	}
}

// The ssl/* core exchange over pairs and TCP: count to 1001, with the
// three ways the side that reads 1001 can leave. Close sends no
// close_notify, so the peer gets Error (ErrDirtyShutdown), or EOF with
// DirtyShutdown; Drain sends close_notify, so the peer gets EOF.
func TestTLSCountTo1001(t *testing.T) {
	for _, kind := range linkKinds {
		for _, mode := range []string{"close", "close-dirty-ok", "drain"} {
			t.Run(kind+"/"+mode, func(t *testing.T) { testTLSCount(t, kind, mode) })
		}
	}
}

func testTLSCount(t *testing.T, kind, mode string) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, kind, 0)
	opts := pipeline.TLSOptions{Options: actor.CloseOnFree | actor.DeferCallbacks}
	if mode == "close-dirty-ok" {
		opts.DirtyShutdown = true
	}
	client, server := tlsPair(t, a, b, opts)
	defer closeAll(t, client)

	var drained sync.WaitGroup
	defer drained.Wait()
	finish := func(s *actor.Session) { s.Close() }
	if mode == "drain" {
		finish = func(s *actor.Session) {
			srv := s.Bufferevent()
			drained.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
				defer cancel()
				if err := srv.Drain(ctx); err != nil {
					t.Errorf("server Drain = %v", err)
				}
			})
		}
	}
	cs, ss := newCountSide(nil), newCountSide(finish)
	client.SetCallbacks(cs.callbacks(t))
	server.SetCallbacks(ss.callbacks(t))
	client.Enable(actor.Read)
	server.Enable(actor.Read)
	client.Write([]byte("1\n")) // before the handshake: held, then sent

	testkit.Recv(t, cs.connected, "the client's Connected")
	testkit.Recv(t, ss.connected, "the server's Connected")
	if st, ok := pipeline.TLSState(client); !ok || !st.HandshakeComplete {
		t.Errorf("TLSState(client) = %v, %v, want a completed handshake", st.HandshakeComplete, ok)
	}
	if client.Underlying() != a || client.Conn() != a.Conn() {
		t.Errorf("client Underlying/Conn are not the underlying's")
	}
	testkit.Recv(t, ss.last, "the server to read 1001")
	e := testkit.Recv(t, cs.events, "the client's end event")
	switch mode {
	case "close":
		if e.Event&actor.Error == 0 || !errors.Is(e.Err, pipeline.ErrDirtyShutdown) {
			t.Errorf("client event = %v %v, want Error with ErrDirtyShutdown", e.Event, e.Err)
		}
	default:
		if e.Event != actor.Reading|actor.EOF {
			t.Errorf("client event = %v %v, want Reading|EOF", e.Event, e.Err)
		}
	}
	testkit.Recv(t, server.Done(), "the server to stop")
	select {
	case e := <-ss.events:
		t.Errorf("server event %v %v, want none", e.Event, e.Err)
	default:
	}
}

// The ssl wm tests: a 1 KiB payload, a 5 KiB read high watermark on each
// side, each read callback drains at most 512 bytes and queues the
// payload again, until each side has consumed exactly 40 KiB: no stall at
// the high watermark, and the input never holds more than the mark.
func TestTLSWatermarks(t *testing.T) {
	for _, kind := range linkKinds {
		for _, defer_ := range []bool{false, true} {
			name := kind
			if defer_ {
				name += "/defer"
			}
			t.Run(name, func(t *testing.T) {
				base := testbev.NewBase(t)
				opt := actor.CloseOnFree
				if defer_ {
					opt |= actor.DeferCallbacks
				}
				a, b := newLink(t, base, kind, 0)
				client, server := tlsPair(t, a, b, pipeline.TLSOptions{Options: opt})
				defer closeAll(t, client, server)
				const limit, toRead, high = 40 << 10, 512, 5 << 10
				payload := bytes.Repeat([]byte("w"), 1<<10)
				done := make(chan int, 2)
				// Once both sides are done the test closes them, and a side
				// still writing then fails: that is the close's doing.
				var ending atomic.Bool
				side := func(bev *actor.Bufferevent) {
					got := 0
					bev.SetWatermark(actor.Read, 0, high)
					bev.SetCallbacks(actor.Callbacks{
						Read: func(s *actor.Session) {
							// Reads never take more than the high mark
							// leaves: a read past it would leave the
							// input at the mark after this callback, and
							// no read would come to run it again.
							if in := s.Input().Len(); in > high {
								t.Errorf("input holds %d bytes, high mark %d", in, high)
							}
							n := min(s.Input().Len(), toRead, limit-got)
							s.Input().Drain(n)
							got += n
							if got == limit {
								s.Disable(actor.Read)
								done <- got
								return
							}
							s.Write(payload)
						},
						Event: func(s *actor.Session, ev actor.Event, err error) {
							if ev&actor.Connected != 0 {
								s.Write(payload)
								return
							}
							if !ending.Load() {
								t.Errorf("event %v %v", ev, err)
							}
						},
					})
					bev.Enable(actor.Read | actor.Write)
				}
				side(client)
				side(server)
				for range 2 {
					if got := testkit.Recv(t, done, "40 KiB on both sides"); got != limit {
						t.Errorf("consumed %d bytes, want %d", got, limit)
					}
				}
				ending.Store(true)
			})
		}
	}
}

// A client that does not trust the server's certificate: both sides get
// one Error with the TLS cause, neither gets Connected, and the
// underlyings are closed (CloseOnFree).
func TestTLSHandshakeFailure(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	scfg, _ := tlsConfigs(t)
	client, err := pipeline.NewTLSClient(a, &tls.Config{ServerName: "bev.test"}, pipeline.TLSOptions{Options: actor.CloseOnFree})
	if err != nil {
		t.Fatalf("NewTLSClient = %v", err)
	}
	server, err := pipeline.NewTLSServer(b, scfg, pipeline.TLSOptions{Options: actor.CloseOnFree})
	if err != nil {
		t.Fatalf("NewTLSServer = %v", err)
	}
	defer closeAll(t, client, server)
	cl, sl := newEventLog(), newEventLog()
	client.SetCallbacks(actor.Callbacks{Event: cl.callback})
	server.SetCallbacks(actor.Callbacks{Event: sl.callback})
	ce := testkit.Recv(t, cl.c, "the client's handshake error")
	var verr *tls.CertificateVerificationError
	if ce.Event != actor.Error || !errors.As(ce.Err, &verr) {
		t.Errorf("client event = %v %v, want Error with a certificate verification error", ce.Event, ce.Err)
	}
	se := testkit.Recv(t, sl.c, "the server's handshake error")
	if se.Event != actor.Error || se.Err == nil {
		t.Errorf("server event = %v %v, want Error with the TLS cause", se.Event, se.Err)
	}
	testkit.Recv(t, a.Done(), "the client's underlying to close")
	testkit.Recv(t, b.Done(), "the server's underlying to close")
}

// ssl timeout: a client whose peer never answers gets exactly one timeout
// (its write timeout covers the handshake) and no Connected.
func TestTLSHandshakeTimeout(t *testing.T) {
	// Outside the bubble: tlsConfigs makes its certificate once for the
	// whole package, valid from the time it is made, and the bubble's
	// clock reads the year 2000.
	_, ccfg := tlsConfigs(t)
	synctest.Test(t, func(t *testing.T) {
		base := testbev.NewBase(t)
		a, b, err := actor.NewPair(base, 0)
		if err != nil {
			t.Fatalf("NewPair = %v", err)
		}
		defer closeAll(t, b)
		client, err := pipeline.NewTLSClient(a, ccfg, pipeline.TLSOptions{Options: actor.CloseOnFree})
		if err != nil {
			t.Fatalf("NewTLSClient = %v", err)
		}
		defer closeAll(t, client)
		l := newEventLog()
		client.SetCallbacks(actor.Callbacks{Event: l.callback})
		client.SetTimeouts(2*time.Second, 2*time.Second)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		evs := l.drain()
		if len(evs) != 1 || evs[0].Event&actor.Timeout == 0 {
			t.Errorf("events after 5 s = %v, want exactly one Timeout", evs)
		}
	})
}

// A server whose client stops before the handshake ends: the handshake
// fails after TLSOptions.HandshakeTimeout (DefaultHandshakeTimeout when
// zero), not before, with one Error whose cause matches actor.ErrTimeout
// and os.ErrDeadlineExceeded; a negative timeout sets no bound. The
// bubble's clock stands for the real one.
func TestTLSHandshakeDeadline(t *testing.T) {
	scfg, _ := tlsConfigs(t) // outside the bubble: see TestTLSHandshakeTimeout
	cases := []struct {
		name string
		opt  time.Duration
		want time.Duration // 0: none
	}{
		{"default", 0, pipeline.DefaultHandshakeTimeout},
		{"3s", 3 * time.Second, 3 * time.Second},
		{"none", -1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := testbev.NewBase(t)
				a, b, err := actor.NewPair(base, 0)
				if err != nil {
					t.Fatalf("NewPair = %v", err)
				}
				defer closeAll(t, a)
				server, err := pipeline.NewTLSServer(b, scfg, pipeline.TLSOptions{Options: actor.CloseOnFree, HandshakeTimeout: tc.opt})
				if err != nil {
					t.Fatalf("NewTLSServer = %v", err)
				}
				defer closeAll(t, server)
				l := newEventLog()
				server.SetCallbacks(actor.Callbacks{Event: l.callback})
				a.Write([]byte{22, 3, 1}) // the start of a ClientHello, and no more
				start := time.Now()
				limit := tc.want
				if limit == 0 {
					limit = time.Minute
				}
				time.Sleep(limit - time.Millisecond)
				synctest.Wait()
				if evs := l.drain(); len(evs) != 0 {
					t.Fatalf("events %v after %v, want none yet", evs, time.Since(start))
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				evs := l.drain()
				if tc.want == 0 {
					if len(evs) != 0 {
						t.Errorf("events %v after a minute with no bound, want none", evs)
					}
					return
				}
				if len(evs) != 1 || evs[0].Event != actor.Error ||
					!errors.Is(evs[0].Err, actor.ErrTimeout) || !errors.Is(evs[0].Err, os.ErrDeadlineExceeded) {
					t.Errorf("events after %v = %v, want one Error wrapping actor.ErrTimeout", tc.want, evs)
				}
			})
		})
	}
}

// The handshake timeout is measured on the Base's clock, as a
// bufferevent's own timeouts are: with a clock the test moves by hand, a
// server whose client stopped mid-ClientHello fails once the clock has
// moved the timeout on (it was armed on the real clock, an hour away
// here). TestTLSHandshakeDeadline checks, in a synctest bubble, that it
// does not fail before.
func TestTLSHandshakeTimeoutFollowsBaseClock(t *testing.T) {
	scfg, _ := tlsConfigs(t)
	clk := testbev.NewManualClock()
	base := testbev.NewBaseClock(t, clk)
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatalf("NewPair = %v", err)
	}
	defer closeAll(t, a)
	events := make(chan actor.EventInfo, 4)
	server, err := pipeline.NewTLSServer(b, scfg, pipeline.TLSOptions{Options: actor.CloseOnFree, HandshakeTimeout: time.Hour})
	if err != nil {
		t.Fatalf("NewTLSServer = %v", err)
	}
	defer closeAll(t, server)
	server.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		events <- actor.EventInfo{Event: ev, Err: err}
	}})
	a.Write([]byte{22, 3, 1}) // the start of a ClientHello, and no more
	testbev.WaitArmed(t, clk)
	clk.Advance(time.Hour)
	e := testkit.Recv(t, events, "the handshake's timeout on the Base's clock")
	if e.Event != actor.Error || !errors.Is(e.Err, actor.ErrTimeout) {
		t.Errorf("event %v (%v), want Error wrapping actor.ErrTimeout", e.Event, e.Err)
	}
}

// A TLS bufferevent stacks on a filter and carries a filter in turn, and
// a Conn view over it passes the net.Conn conformance suite.
func TestTLSNettest(t *testing.T) {
	wrap := func(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent) {
		fa, fb := passFilters(t, a, b)
		client, server := tlsPair(t, fa, fb, pipeline.TLSOptions{Options: actor.CloseOnFree})
		return client, server
	}
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) { nettest.TestConn(t, makePipe(t, kind, wrap)) })
	}
}

// crypto/tls's own client and server talk to ours through Conn views.
func TestTLSInteroperates(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	scfg, ccfg := tlsConfigs(t)
	server, err := pipeline.NewTLSServer(b, scfg, pipeline.TLSOptions{Options: actor.CloseOnFree})
	if err != nil {
		t.Fatalf("NewTLSServer = %v", err)
	}
	defer closeAll(t, server)
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		s.Output().MoveFrom(s.Input()) // echo
	}})
	server.Enable(actor.Read)
	ca, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	tc := tls.Client(ca, ccfg)
	defer tc.Close()
	var _ net.Conn = tc
	if _, err := tc.Write([]byte("ping")); err != nil {
		t.Fatalf("tls Write = %v", err)
	}
	buf := make([]byte, 4)
	tc.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if _, err := tc.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tls Read = %q, %v, want ping", buf, err)
	}
}

// A TLS stream cut inside a record is an Error even with DirtyShutdown,
// which forgives only a cut at a record's boundary: every byte of the
// records before it is delivered first, and the cause matches
// io.ErrUnexpectedEOF. The server is crypto/tls over the net.Conn view of
// the other end, which then writes the first 10 bytes of a 64-byte record
// and half-closes.
func TestTLSCutInsideRecord(t *testing.T) {
	for _, kind := range linkKinds {
		for _, dirtyOK := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/DirtyShutdown=%v", kind, dirtyOK), func(t *testing.T) {
				base := testbev.NewBase(t)
				a, b := newLink(t, base, kind, actor.CloseOnFree)
				scfg, ccfg := tlsConfigs(t)
				client, err := pipeline.NewTLSClient(a, ccfg, pipeline.TLSOptions{Options: actor.CloseOnFree, DirtyShutdown: dirtyOK})
				if err != nil {
					t.Fatal(err)
				}
				view, err := pipeline.NewConn(b)
				if err != nil {
					t.Fatal(err)
				}
				in := client.In()
				server := tls.Server(view, scfg)
				view.SetDeadline(time.Now().Add(testkit.WaitTime))
				if _, err := server.Write([]byte("whole record")); err != nil {
					t.Fatalf("server Write = %v", err)
				}
				cut := append([]byte{23, 3, 3, 0, 64}, make([]byte, 10)...) // application data, 64 bytes
				if _, err := view.Write(cut); err != nil {
					t.Fatal(err)
				}
				if err := view.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				got := testkit.RecvAll(t, in, "In after the cut")
				if string(got) != "whole record" {
					t.Errorf("client read %q, want %q", got, "whole record")
				}
				if err := client.Err(); !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					t.Errorf("Err() after a cut inside a record = %v, want io.ErrUnexpectedEOF, not io.EOF", err)
				}
				client.Close()
				view.Close()
			})
		}
	}
}
