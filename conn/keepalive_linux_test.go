package conn_test

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// sockopt reads the socket options opts (level, name pairs) of the
// socket under s.
func sockopt(t *testing.T, s *conn.Socket, opts ...[2]int) []int {
	t.Helper()
	tc, ok := s.Conn().(*net.TCPConn)
	if !ok {
		t.Fatalf("socket's connection is %T, want *net.TCPConn", s.Conn())
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]int, len(opts))
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		for k, o := range opts {
			if gerr == nil {
				vals[k], gerr = syscall.GetsockoptInt(int(fd), o[0], o[1])
			}
		}
	}); err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v, %v", err, gerr)
	}
	return vals
}

// keepAlive reads SO_KEEPALIVE and TCP_KEEPIDLE (in seconds) of the
// socket under s.
func keepAlive(t *testing.T, s *conn.Socket) (on bool, idle int) {
	t.Helper()
	v := sockopt(t, s, [2]int{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE}, [2]int{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE})
	return v[0] != 0, v[1]
}

// noDelay reads TCP_NODELAY of the socket under s.
func noDelay(t *testing.T, s *conn.Socket) bool {
	t.Helper()
	return sockopt(t, s, [2]int{syscall.IPPROTO_TCP, syscall.TCP_NODELAY})[0] != 0
}

// TestKeepAlive checks that TCP keep-alive is off on accepted and
// connected sockets, as libevent's, though Go's net.Listen and zero
// net.Dialer turn it on, and that ListenerConfig.KeepAlive turns it on
// for accepted sockets with the idle time asked for. TCP_NODELAY stays
// on, as Go sets it (libevent leaves Nagle on; docs/design.md,
// "Performance stance", says why bev does not).
func TestKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ka       net.KeepAliveConfig
		wantOn   bool
		wantIdle int // checked when on
	}{
		{"default", net.KeepAliveConfig{}, false, 0},
		{"asked", net.KeepAliveConfig{Enable: true, Idle: 42 * time.Second}, true, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			accepted := make(chan *conn.Socket, 1)
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0",
				conn.ListenerConfig{Options: actor.CloseOnFree, KeepAlive: tc.ka},
				func(s *conn.Socket) { accepted <- s })
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			connects := []struct {
				name    string
				connect func(s *conn.Socket) error
			}{
				{"ConnectAddr", func(s *conn.Socket) error {
					return s.ConnectAddr(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(port))
				}},
				{"ConnectHostname", func(s *conn.Socket) error {
					return s.ConnectHostname(context.Background(), nil, "tcp", "127.0.0.1", port)
				}},
			}
			for _, c := range connects {
				s, err := conn.New(base, nil, actor.CloseOnFree)
				if err != nil {
					t.Fatal(err)
				}
				connected := make(chan error, 1)
				s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
					if ev&(actor.Connected|actor.Error) != 0 {
						connected <- err
					}
				}})
				if err := c.connect(s); err != nil {
					t.Fatal(err)
				}
				if err := testkit.Recv(t, connected, c.name+"'s outcome"); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if on, _ := keepAlive(t, s); on {
					t.Errorf("%s: SO_KEEPALIVE on, want off", c.name)
				}
				a := testkit.Recv(t, accepted, "the accepted socket")
				if !noDelay(t, s) || !noDelay(t, a) {
					t.Errorf("%s: TCP_NODELAY connected %v, accepted %v; want on for both", c.name, noDelay(t, s), noDelay(t, a))
				}
				on, idle := keepAlive(t, a)
				if on != tc.wantOn || on && idle != tc.wantIdle {
					t.Errorf("accepted socket: keep-alive %v, idle %d s; want %v, idle %d s", on, idle, tc.wantOn, tc.wantIdle)
				}
				s.Close()
				a.Close()
			}
		})
	}
}
