package conn_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

// TestListenerEMFILE runs the listener out of descriptors for real: the
// process's RLIMIT_NOFILE is lowered to its lowest free descriptor, so
// the next accept fails with EMFILE. The listener reports it to OnError
// and keeps retrying; once the limit is restored the waiting connection
// is accepted. The client socket is made before the limit is lowered, so
// that connecting needs no new descriptor.
func TestListenerEMFILE(t *testing.T) {
	base := newBase(t)
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

	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	// The lowest free descriptor: every one below it is taken.
	free, err := syscall.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(free)
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
				t.Errorf("restoring RLIMIT_NOFILE: %v", err)
			}
		}
	}
	defer restore()
	low := orig
	low.Cur = uint64(free)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower RLIMIT_NOFILE: %v", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		restore()
		t.Fatalf("connect: %v", err)
	}
	got := recv(t, errc, "an accept error reported to OnError")
	restore()
	if !errors.Is(got, syscall.EMFILE) {
		t.Errorf("OnError got %v, want an error wrapping EMFILE", got)
	}
	s := recv(t, accepted, "the connection accepted once descriptors are free again")
	s.Close()
	select {
	case <-ln.Done():
		t.Errorf("the listener stopped on EMFILE: %v", ln.Err())
	default:
	}
}
