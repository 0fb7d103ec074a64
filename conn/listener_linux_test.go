package conn_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// TestListenerEMFILE runs the listener out of descriptors for real: the
// process's RLIMIT_NOFILE is lowered to its lowest free descriptor, so
// the next accept fails with EMFILE. The listener reports it to OnError
// and keeps retrying; once the limit is restored the waiting connection
// is accepted. The client socket is made before the limit is lowered, so
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
	got := testkit.Recv(t, errc, "an accept error reported to OnError")
	restore()
	if !errors.Is(got, syscall.EMFILE) {
		t.Errorf("OnError got %v, want an error wrapping EMFILE", got)
	}
	s := testkit.Recv(t, accepted, "the connection accepted once descriptors are free again")
	s.Close()
	select {
	case <-ln.Done():
		t.Errorf("the listener stopped on EMFILE: %v", ln.Err())
	default:
	}
}
