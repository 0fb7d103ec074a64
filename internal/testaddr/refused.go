//go:build unix

// Package testaddr gives bev's tests loopback addresses with a known fate.
package testaddr

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Refused returns an address on 127.0.0.1 where a socket is bound but not
// listening, as libevent's "fake listener": a connect there is refused,
// and, unlike a port from a listener that was closed again, nothing else
// can take the port while the test runs. The socket closes when the test
// ends; failures to make it fail the test.
func Refused(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
