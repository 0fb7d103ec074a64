package tlsconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
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

// counter is what libevent's ssl tests count.
type counter struct {
	connected, closed, errored, timeouts atomic.Int32
	done                                 atomic.Int32
}

// respond is libevent's respond_to_number: read a number and answer n+1.
// At 1001 libevent frees the bufferevent; here the test drains it, a
// graceful close that sends close_notify, so the bufferevent is sent on
// finished.
func (c *counter) respond(t testing.TB, finished chan<- *actor.Bufferevent) func(*actor.Session) {
	return func(s *actor.Session) {
		line, err := s.Input().ReadLine(actor.EOLLF)
		if err != nil {
			return
		}
		n, err := strconv.Atoi(string(line))
		if err != nil || n <= 0 {
			t.Errorf("read %q, want a positive number", line)
			return
		}
		if n == 1001 {
			c.done.Add(1)
			// libevent's free clears the callbacks; so does this side,
			// since it is done too.
			s.Bufferevent().SetCallbacks(actor.Callbacks{})
			s.Disable(actor.Read)
			finished <- s.Bufferevent()
			return
		}
		fmt.Fprintf(s.Output(), "%d\n", n+1)
	}
}

// event is libevent's eventcb: count, and free on EOF, error or timeout.
func (c *counter) event(t testing.TB, finished chan<- *actor.Bufferevent, writeOnConnect bool) func(*actor.Session, actor.Event, error) {
	return func(s *actor.Session, ev actor.Event, err error) {
		switch {
		case ev&actor.Connected != 0:
			c.connected.Add(1)
			if writeOnConnect {
				s.Write([]byte("1\n"))
			}
			return
		case ev&actor.EOF != 0:
			c.closed.Add(1)
		case ev&actor.Error != 0:
			t.Logf("event %v: %v", ev, err)
			c.errored.Add(1)
		case ev&actor.Timeout != 0:
			c.timeouts.Add(1)
		}
		s.Close()
		finished <- s.Bufferevent()
	}
}

// TestTLSExchange is libevent's ssl/bufferevent_socketpair (and
// _write_after_connect): a client and a server TLS socket over one TCP
// connection count to 1001. Both report Connected; the side that reads
// 1001 is drained (libevent frees it), which sends close_notify, so the
// other side sees EOF where libevent's sees an error.
func TestTLSExchange(t *testing.T) {
	for _, writeOnConnect := range []bool{false, true} {
		t.Run(fmt.Sprintf("write_after_connect=%v", writeOnConnect), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			c1, c2 := testconn.TCPConns(t)
			opts := actor.DeferCallbacks | actor.CloseOnFree
			var cnt counter
			finished := make(chan *actor.Bufferevent, 2)
			client, err := tlsconn.New(base, c1, ccfg, tlsconn.Connecting, opts)
			if err != nil {
				t.Fatal(err)
			}
			server, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, opts)
			if err != nil {
				t.Fatal(err)
			}
			if st := tlsconn.Of(client).State(); st != tlsconn.Connecting && st != tlsconn.Open {
				t.Errorf("client State() = %v, want Connecting (or Open)", st)
			}
			for _, s := range []*conn.Socket{client, server} {
				s.SetCallbacks(actor.Callbacks{
					Read:  cnt.respond(t, finished),
					Event: cnt.event(t, finished, writeOnConnect && s == client),
				})
				s.Enable(actor.Read | actor.Write)
			}
			if !writeOnConnect {
				client.Write([]byte("1\n"))
			}
			last := testkit.Recv(t, finished, "the count to 1001")
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			if err := last.Drain(ctx); err != nil {
				t.Errorf("Drain = %v, want nil", err)
			}
			testkit.Recv(t, finished, "the other side to close")
			<-client.Done()
			<-server.Done()
			if n := cnt.connected.Load(); n != 2 {
				t.Errorf("%d Connected events, want 2", n)
			}
			if n := cnt.done.Load(); n != 1 {
				t.Errorf("1001 read %d times, want 1", n)
			}
			if c, e := cnt.closed.Load(), cnt.errored.Load(); c != 1 || e != 0 {
				t.Errorf("other side: %d EOF, %d errors, want 1 EOF (close_notify was sent), 0 errors", c, e)
			}
			if n := cnt.timeouts.Load(); n != 0 {
				t.Errorf("%d timeouts, want 0", n)
			}
		})
	}
}

// TestTLSDirtyShutdown is libevent's dirty_shutdown variants: a peer that
// closes the TCP connection without close_notify is an Error
// (ErrDirtyShutdown, also kept as the TLS error), or EOF with
// DirtyShutdown set. Every byte before it is delivered first.
func TestTLSDirtyShutdown(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			c1, c2 := testconn.TCPConns(t)
			s, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			if allow {
				if old, err := tlsconn.Of(s).SetFlags(tlsconn.DirtyShutdown); old != 0 || err != nil {
					t.Errorf("SetFlags = %v, %v, want 0, nil", old, err)
				}
			}
			type end struct {
				ev   actor.Event
				err  error
				data string
			}
			ends := make(chan end, 2)
			s.SetCallbacks(actor.Callbacks{Event: func(s *actor.Session, ev actor.Event, err error) {
				if ev == actor.Connected {
					return
				}
				ends <- end{ev, err, string(testkit.DrainAll(t, s.Input()))}
			}})
			s.Enable(actor.Read)
			peer := tls.Client(c1, ccfg)
			if _, err := peer.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			c1.Close() // no close_notify
			e := testkit.Recv(t, ends, "the end of the stream")
			if e.data != "hello" {
				t.Errorf("input at the end = %q, want %q", e.data, "hello")
			}
			if allow {
				if e.ev != actor.Reading|actor.EOF {
					t.Errorf("event %v (%v), want Reading|EOF", e.ev, e.err)
				}
				if err := tlsconn.Of(s).Err(); err != nil {
					t.Errorf("Err() = %v, want nil", err)
				}
			} else {
				if e.ev != actor.Reading|actor.Error || !errors.Is(e.err, tlsconn.ErrDirtyShutdown) || !errors.Is(e.err, io.ErrUnexpectedEOF) {
					t.Errorf("event %v (%v), want Reading|Error with ErrDirtyShutdown", e.ev, e.err)
				}
				if err := tlsconn.Of(s).Err(); !errors.Is(err, tlsconn.ErrDirtyShutdown) {
					t.Errorf("Err() = %v, want ErrDirtyShutdown", err)
				}
			}
			s.Do(func(*actor.Session) {})
			if len(ends) != 0 {
				t.Errorf("more than one end event")
			}
		})
	}
}

// TestTLSGracefulClose: Drain writes everything, then close_notify, so a
// peer that does not allow dirty shutdowns still sees a clean EOF after
// every byte.
func TestTLSGracefulClose(t *testing.T) {
	base := testbev.NewBase(t)
	scfg, ccfg := testcert.Configs(t, "bev.test")
	c1, c2 := testconn.TCPConns(t)
	server, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	client, err := tlsconn.New(base, c1, ccfg, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300000
	type end struct {
		ev  actor.Event
		got int
	}
	ends := make(chan end, 1)
	received := 0
	server.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { received += len(testkit.DrainAll(t, s.Input())) },
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev != actor.Connected {
				ends <- end{ev, received}
			}
		},
	})
	server.Enable(actor.Read)
	client.Write(testkit.Pattern(n))
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	if err := client.Drain(ctx); err != nil {
		t.Fatalf("Drain = %v, want nil", err)
	}
	e := testkit.Recv(t, ends, "the server's EOF")
	if e.ev != actor.Reading|actor.EOF || e.got != n {
		t.Errorf("server got %v after %d bytes, want Reading|EOF after %d", e.ev, e.got, n)
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
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
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

// TestTLSWatermarks is libevent's ssl/bufferevent_wm{,_defer}: both sides
// have a read high watermark of 5 KiB, take 512 bytes per read callback
// and answer each with the 1 KiB payload, until each has consumed
// exactly 40 KiB: reading must not stall at the high watermark, and the
// input never holds more than the mark.
func TestTLSWatermarks(t *testing.T) {
	const (
		payload = 1 << 10
		high    = 5 << 10
		limit   = high << 3
		take    = payload >> 1
	)
	for _, opts := range []actor.Option{0, actor.DeferCallbacks} {
		t.Run(fmt.Sprintf("opts=%#x", uint32(opts)), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			data := make([]byte, payload)
			for i := range data {
				data[i] = 'A'
			}
			type side struct {
				got  int
				done chan int
			}
			transfer := func(sd *side) actor.Callbacks {
				return actor.Callbacks{Read: func(s *actor.Session) {
					if in := s.Input().Len(); in > high {
						t.Errorf("input holds %d bytes, high mark %d", in, high)
					}
					if sd.got >= limit {
						return
					}
					n := min(s.Input().Len(), take, limit-sd.got)
					s.Input().Drain(n)
					sd.got += n
					if sd.got == limit {
						s.Disable(actor.Read)
						sd.done <- sd.got
						return
					}
					s.Write(data)
				}}
			}
			server := &side{done: make(chan int, 1)}
			client := &side{done: make(chan int, 1)}
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: opts | actor.CloseOnFree, Layer: tlsconn.Server(scfg)},
				func(s *conn.Socket) {
					s.SetWatermark(actor.Read, 0, high)
					s.SetCallbacks(transfer(server))
					s.Enable(actor.Read | actor.Write)
				})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			s, err := tlsconn.New(base, nil, ccfg, tlsconn.Connecting, opts|actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			s.SetWatermark(actor.Read, 0, high)
			s.SetCallbacks(transfer(client))
			if err := s.ConnectAddr(context.Background(), "tcp", ln.Addr().String()); err != nil {
				t.Fatal(err)
			}
			s.Write(data)
			s.Enable(actor.Read | actor.Write)
			if got := testkit.Recv(t, client.done, "the client's 40 KiB"); got != limit {
				t.Errorf("client consumed %d, want %d", got, limit)
			}
			if got := testkit.Recv(t, server.done, "the server's 40 KiB"); got != limit {
				t.Errorf("server consumed %d, want %d", got, limit)
			}
		})
	}
}

// TestTLSHandshakeFailure: verification is on by default and TLS 1.2 is
// the minimum; a failed handshake is one Error event with the TLS cause,
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

// TestTLSAPI: flags and state on TLS and plain sockets, and New's
// argument checks.
func TestTLSAPI(t *testing.T) {
	base := testbev.NewBase(t)
	plain, err := conn.New(base, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if (tlsconn.Of(plain) != nil) || tlsconn.Of(plain).Conn() != nil || tlsconn.Of(plain).Err() != nil || tlsconn.Of(plain).Flags() != 0 || tlsconn.Of(plain).State() != tlsconn.Open {
		t.Errorf("a plain socket reports TLS state")
	}
	if _, err := tlsconn.Of(plain).SetFlags(tlsconn.DirtyShutdown); !errors.Is(err, tlsconn.ErrNotTLS) {
		t.Errorf("SetFlags on a plain socket = %v, want ErrNotTLS", err)
	}
	s, err := tlsconn.New(base, nil, nil, tlsconn.Connecting, 0)
	if err != nil {
		t.Fatal(err)
	}
	if (tlsconn.Of(s) == nil) || tlsconn.Of(s).State() != tlsconn.Connecting {
		t.Errorf("Of != nil, State = %v, %v, want true, Connecting", (tlsconn.Of(s) != nil), tlsconn.Of(s).State())
	}
	if _, err := tlsconn.Of(s).SetFlags(1 << 5); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("SetFlags(unknown) = %v, want ErrInvalid", err)
	}
	tlsconn.Of(s).SetFlags(tlsconn.DirtyShutdown)
	if old, err := tlsconn.Of(s).ClearFlags(tlsconn.DirtyShutdown); old != tlsconn.DirtyShutdown || err != nil || tlsconn.Of(s).Flags() != 0 {
		t.Errorf("ClearFlags = %v, %v (now %v), want DirtyShutdown, nil (now 0)", old, err, tlsconn.Of(s).Flags())
	}
	c1, _ := testconn.TCPConns(t)
	if _, err := tlsconn.New(base, c1, nil, tlsconn.Open, 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(plain conn, Open) = %v, want ErrInvalid", err)
	}
	if _, err := tlsconn.New(base, nil, nil, tlsconn.State(7), 0); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("New(state 7) = %v, want ErrInvalid", err)
	}
}

// TestCloseWhileHandshaking: Close during a client handshake whose server
// never answers returns promptly, reports no event and leaks nothing.
func TestCloseWhileHandshaking(t *testing.T) {
	base := testbev.NewBase(t)
	_, ccfg := testcert.Configs(t, "bev.test")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s, err := tlsconn.New(base, nil, ccfg, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan actor.EventInfo, 4)
	s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
		events <- actor.EventInfo{Event: ev, Err: err}
	}})
	if err := s.ConnectAddr(context.Background(), "tcp", silent.Addr().String()); err != nil {
		t.Fatal(err)
	}
	c, err := silent.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The ClientHello arriving means the handshake is under way.
	c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("reading the ClientHello: %v", err)
	}
	start := time.Now()
	if err := s.Close(); err != nil && !errors.Is(err, io.EOF) {
		t.Errorf("Close = %v, want nil", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with a handshake in flight, want it prompt", d)
	}
	if len(events) != 0 {
		t.Errorf("events after Close: %v, want none", <-events)
	}
	if st := tlsconn.Of(s).State(); st != tlsconn.Connecting {
		t.Errorf("State() = %v after an unfinished handshake, want Connecting", st)
	}
}

// TestFreeSendsCloseNotify: a server that frees its TLS socket in a read
// callback, after its answer reached the client, sends close_notify every
// time, so the client (which does not allow dirty shutdowns) reads the
// answer and then a clean EOF. crypto/tls's Close skips close_notify while
// a Write is in flight, and the server's writer may not have returned
// from the answer's Write yet when the client's next line arrives. In the
// second variant the server answers and frees in the same callback: the
// answer then either reaches the client followed by close_notify, or not
// at all (libevent's free drops pending output), never without it.
func TestFreeSendsCloseNotify(t *testing.T) {
	runs := 1000
	if testing.Short() {
		runs = 100
	}
	for _, sameCallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("answer_and_free_together=%v", sameCallback), func(t *testing.T) {
			base := testbev.NewBase(t)
			scfg, ccfg := testcert.Configs(t, "bev.test")
			deadline := time.Now().Add(30 * time.Second)
			dirty := 0
			done := 0
			for i := 0; i < runs && time.Now().Before(deadline); i++ {
				if freeOnce(t, base, scfg, ccfg, sameCallback) {
					dirty++
				}
				done++
				if t.Failed() {
					break
				}
			}
			if dirty > 0 {
				t.Errorf("%d of %d runs ended without close_notify", dirty, done)
			}
			if done < runs/10 {
				t.Errorf("only %d runs in the time bound", done)
			}
			t.Logf("%d runs", done)
		})
	}
}

// freeOnce runs one exchange and reports whether the client saw a dirty
// shutdown.
func freeOnce(t *testing.T, base *actor.Base, scfg, ccfg *tls.Config, sameCallback bool) bool {
	t.Helper()
	c1, c2 := testconn.TCPConns(t)
	opts := actor.CloseOnFree
	server, err := tlsconn.New(base, c2, scfg, tlsconn.Accepting, opts)
	if err != nil {
		t.Fatal(err)
	}
	client, err := tlsconn.New(base, c1, ccfg, tlsconn.Connecting, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	defer server.Close()
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		for {
			line, err := s.Input().ReadLine(actor.EOLLF)
			if err != nil {
				return
			}
			switch string(line) {
			case "ping":
				s.Write([]byte("pong\n"))
				if sameCallback {
					s.Close()
					return
				}
			case "bye":
				// The client has the answer, so its write is done, or
				// all but: the writer may not have returned from it yet.
				s.Close()
				return
			}
		}
	}})
	server.Enable(actor.Read | actor.Write)
	type end struct {
		ev   actor.Event
		err  error
		data string
	}
	ends := make(chan end, 1)
	got := ""
	client.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			got += string(testkit.DrainAll(t, s.Input()))
			if got == "pong\n" && !sameCallback {
				s.Write([]byte("bye\n"))
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev == actor.Connected {
				return
			}
			got += string(testkit.DrainAll(t, s.Input()))
			ends <- end{ev, err, got}
		},
	})
	client.Enable(actor.Read | actor.Write)
	client.Write([]byte("ping\n"))
	e := testkit.Recv(t, ends, "the client's end of stream")
	switch {
	case e.ev == actor.Reading|actor.EOF && (e.data == "pong\n" || sameCallback && e.data == ""):
		return false
	case e.ev&actor.Error != 0 && errors.Is(e.err, tlsconn.ErrDirtyShutdown):
		return true
	case e.ev&actor.Error != 0 && errors.Is(e.err, io.ErrUnexpectedEOF):
		return true
	}
	t.Errorf("client ended with %v (%v) after %q, want Reading|EOF after %q", e.ev, e.err, e.data, "pong\n")
	return false
}

// TestTLSThroughBufferevent: TLS sockets work through the embedded
// *actor.Bufferevent alone. An accepted TLS socket knows its addresses in
// the accept callback, before its handshake; its callbacks and Enable,
// set through the Bufferevent, start the handshake; a client made over a
// connection with tlsconn.New starts its own with Write and In on the
// Bufferevent, and the echo comes back through the In channel.
func TestTLSThroughBufferevent(t *testing.T) {
	base := testbev.NewBase(t)
	scfg, ccfg := testcert.Configs(t, "bev.test")
	remotes := make(chan net.Addr, 1)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0",
		conn.ListenerConfig{Options: actor.CloseOnFree, Layer: tlsconn.Server(scfg)},
		func(s *conn.Socket) {
			var b *actor.Bufferevent = s.Bufferevent
			var remote net.Addr
			if c := b.Conn(); c != nil {
				remote = c.RemoteAddr()
			}
			remotes <- remote
			testbev.Echo(b, nil)
		})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlsconn.New(base, raw, ccfg, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	defer s.Close()
	if remote := testkit.Recv(t, remotes, "the accept callback"); remote == nil || remote.String() != raw.LocalAddr().String() {
		t.Errorf("accepted socket's Conn().RemoteAddr() = %v in the accept callback, want %v", remote, raw.LocalAddr())
	}
	if c := s.Conn(); c == nil || c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("client's Conn() before the handshake = %v, want one with the server's address", c)
	}
	var b *actor.Bufferevent = s.Bufferevent
	if err := b.Write([]byte("hello over TLS")); err != nil {
		t.Fatal(err)
	}
	in := b.In()
	got := ""
	for len(got) < len("hello over TLS") {
		chunk, ok := recv2(t, in)
		if !ok {
			t.Fatalf("In closed after %q: %v", got, b.Err())
		}
		got += string(chunk)
	}
	if got != "hello over TLS" {
		t.Errorf("echo %q, want %q", got, "hello over TLS")
	}
	if st := tlsconn.Of(s).State(); st != tlsconn.Open {
		t.Errorf("State() = %v after the exchange, want Open", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Errorf("Drain = %v", err)
	}
}

// recv2 receives from a channel that may close, within testkit.WaitTime.
func recv2(t *testing.T, c <-chan []byte) ([]byte, bool) {
	t.Helper()
	timer := time.NewTimer(testkit.WaitTime)
	defer timer.Stop()
	select {
	case p, ok := <-c:
		return p, ok
	case <-timer.C:
		t.Fatal("timed out waiting for input")
		return nil, false
	}
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
