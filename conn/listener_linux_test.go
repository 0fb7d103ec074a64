package conn_test

import (
	"errors"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// retryDelay finds the delay in a listener's report of an accept error
// it retries.
var retryDelay = regexp.MustCompile(`retrying in ([0-9.]+[a-zµ]+)`)

// TestListenerEMFILE runs the listener out of descriptors for real: the
// process's RLIMIT_NOFILE is lowered to its lowest free descriptor, so
// the next accept fails with EMFILE. The listener reports it to OnError
// and keeps retrying, backing off (it does not spin); once the limit is
// restored the waiting connection is accepted. The client socket is made before the limit is lowered, so
// that connecting needs no new descriptor.
func TestListenerEMFILE(t *testing.T) {
	base := testbev.NewBase(t)
	errc := make(chan error, 64)
	accepted := make(chan *conn.Socket, 1)
	cfg := conn.ListenerConfig{
		Options: actor.CloseOnFree,
		OnError: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", cfg, func(s *conn.Socket) { accepted <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	_, restore := testconn.DialAtFDLimit(t, port)
	// Three retries, backing off: the delays they report double, so a
	// listener out of descriptors does not spin (5, 10 and 20 ms).
	var delays []time.Duration
	for range 3 {
		got := testkit.Recv(t, errc, "an accept error reported to OnError")
		if !errors.Is(got, syscall.EMFILE) {
			restore()
			t.Fatalf("OnError got %v, want an error wrapping EMFILE", got)
		}
		m := retryDelay.FindStringSubmatch(got.Error())
		if m == nil {
			restore()
			t.Fatalf("OnError got %v, which names no retry delay", got)
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			restore()
			t.Fatal(err)
		}
		delays = append(delays, d)
	}
	restore()
	for i := 1; i < len(delays); i++ {
		if delays[i] != 2*delays[i-1] {
			t.Errorf("retry delays %v, want each twice the one before", delays)
			break
		}
	}
	s := testkit.Recv(t, accepted, "the connection accepted once descriptors are free again")
	s.Close()
	select {
	case <-ln.Done():
		t.Errorf("the listener stopped on EMFILE: %v", ln.Err())
	default:
	}
}
