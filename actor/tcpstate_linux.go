package actor

import (
	"encoding/binary"
	"net"
	"syscall"

	"github.com/bevgo/bev/internal/netwrap"
)

// tcpClosed reports whether t is a TCP connection whose socket the kernel
// has closed (state TCP_CLOSE): it was reset, or both ends have sent
// their FIN. A peer that only half-closed leaves it in CLOSE_WAIT. It
// reports false for anything else, and when it cannot tell.
func tcpClosed(t Transport) bool {
	c, _ := t.(net.Conn)
	tc, ok := netwrap.Innermost(c).(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	const tcpClose = 7 // include/net/tcp_states.h
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		// The first byte of struct tcp_info is the state; the kernel
		// copies only as much as asked for.
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
	}); err != nil || gerr != nil {
		return false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[0] == tcpClose
}
