//go:build !linux

package actor

import (
	"net"
	"syscall"
)

// newSysConn has no side door to offer on this platform: the bufferevent
// reads and writes through the net.Conn alone.
func newSysConn(c interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
}, nw string) sysConn {
	return nil
}
