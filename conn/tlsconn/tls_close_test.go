package tlsconn_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of tls.go's closing: a peer's dirty shutdown, close_notify after
// Drain and after a free from a read callback, and Close during a
// handshake.

// TestTLSDirtyShutdown is libevent's dirty_shutdown variants: a peer that
// closes the TCP connection without close_notify is an Error
// (ErrDirtyShutdown, also kept as the TLS error), or EOF with
// DirtyShutdown set. Every byte before it is delivered first.
func TestTLSDirtyShutdown(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			s, c1, peer := dirtyServer(t, allow)
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

// TestTLSCutInsideRecord: a peer whose stream ends inside a TLS record
// (here the first 10 bytes of a 64-byte application-data record, then
// FIN) truncated it: Reading|Error with ErrDirtyShutdown and
// io.ErrUnexpectedEOF after every byte of the records before, also with
// DirtyShutdown set, which forgives only an end at a record's boundary,
// as package pipeline's TLS does. (With DirtyShutdown the cut was a clean
// EOF.)
func TestTLSCutInsideRecord(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			s, c1, peer := dirtyServer(t, allow)
			events := s.Events()
			in := s.In()
			c1.SetDeadline(time.Now().Add(testkit.WaitTime))
			if _, err := peer.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, err := c1.Write(append([]byte{23, 3, 3, 0, 64}, make([]byte, 10)...)); err != nil {
				t.Fatal(err)
			}
			c1.CloseWrite()
			var got []byte
			for { // In closes at the end of the stream (a chunk is never empty)
				p := testkit.Recv(t, in, "input, or In closed at the end")
				if p == nil {
					break
				}
				got = append(got, p...)
			}
			if string(got) != "hello" {
				t.Errorf("read %q, want %q", got, "hello")
			}
			ev := testkit.Recv(t, events, "the end event")
			if ev.Event == actor.Connected {
				ev = testkit.Recv(t, events, "the end event")
			}
			if ev.Event != actor.Reading|actor.Error || !errors.Is(ev.Err, tlsconn.ErrDirtyShutdown) || !errors.Is(ev.Err, io.ErrUnexpectedEOF) {
				t.Errorf("event %v (%v), want Reading|Error with ErrDirtyShutdown", ev.Event, ev.Err)
			}
			s.Close()
		})
	}
}

// dirtyServer returns a TLS server socket over a TCP connection, with
// DirtyShutdown set when allow is, the client end's raw TCP connection,
// and a TLS client over it (its handshake runs with its first write).
func dirtyServer(t *testing.T, allow bool) (s *conn.Socket, raw *net.TCPConn, peer *tls.Conn) {
	t.Helper()
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
	return s, c1, tls.Client(c1, ccfg)
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

// TestCloseWhileHandshaking: Close during a client handshake whose server
// never answers returns promptly, reports no event and leaks nothing.
func TestCloseWhileHandshaking(t *testing.T) {
	base := testbev.NewBase(t)
	_, ccfg := testcert.Configs(t, "bev.test")
	silent := testconn.Listen(t)
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

// TestTLSWrittenExactWhenCloseCutsAWrite: over TLS, Written counts the
// bytes crypto/tls took, whole records written to the connection. A
// close that cuts a write waiting in the writer loop (the peer does not
// read, so the socket buffers are full) leaves Written at exactly what the
// peer then reads, the cut record left out on both sides, so that a
// proxy's "sent" and "dropped" add up.
func TestTLSWrittenExactWhenCloseCutsAWrite(t *testing.T) {
	const n = 16 << 20
	scfg, ccfg := testcert.Configs(t, "bev.test")
	craw, sraw := testconn.TCPConns(t)
	sraw.SetWriteBuffer(64 << 10)
	craw.SetReadBuffer(64 << 10)
	s, err := tlsconn.New(testbev.NewBase(t), sraw, scfg, tlsconn.Accepting, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(craw, ccfg)
	c.SetDeadline(time.Now().Add(testkit.WaitTime))
	if err := s.Write(testkit.Pattern(n)); err != nil { // starts the handshake
		t.Fatal(err)
	}
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	// crypto/tls's Write returns only once all it was given is out, so
	// the peer reads some first: writes then complete, and the next one
	// waits in the writer loop once the peer stops. Close gives it
	// closeWait, then cuts it.
	const first = 1 << 20
	if _, err := io.ReadFull(c, make([]byte, first)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	written := s.Written()
	got, err := io.Copy(io.Discard, c)
	got += first
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading after the close: %v (after %d bytes)", err, got)
	}
	if got != written {
		t.Errorf("the peer read %d bytes, then %v; Written() = %d after Close", got, err, written)
	}
	if written >= n {
		t.Errorf("Written() = %d: all %d bytes went, the close cut nothing", written, n)
	}
}
