package tlsconn_test

import (
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/internal/testcert"
)

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
