package tlsconn_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
)

// Helpers shared by the tests of tls.go (tls_test.go, tls_handshake_test.go).

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
