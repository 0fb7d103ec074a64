package tlsconn_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testcert"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

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
