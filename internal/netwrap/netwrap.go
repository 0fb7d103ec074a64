// Package netwrap finds the connection under layered net.Conns, for the
// packages of this module that must act on the socket itself.
package netwrap

import "net"

// Innermost returns the connection at the bottom of c's layers, unwrapping
// each through its NetConn method (crypto/tls's *tls.Conn has one, as do
// bev's TLS sockets). It returns c itself when c has no such method, and
// nil for a nil c.
func Innermost(c net.Conn) net.Conn {
	for c != nil {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		inner := u.NetConn()
		if inner == nil || inner == c {
			break
		}
		c = inner
	}
	return c
}

// Reset closes the connection at the bottom of c's layers (Innermost) so
// that its peer sees a reset: with SO_LINGER 0 when it can set one (TCP,
// LingerZero), so the kernel sends an RST and drops what is unsent. It
// closes under every layer, so none writes again (a TLS layer sends no
// close_notify after what was sent). It returns Close's error, and nil
// for a nil c. A connection that cannot linger (a pipe, say) is just
// closed.
func Reset(c net.Conn) error {
	c = Innermost(c)
	if !LingerZero(c) {
		return nil
	}
	return c.Close()
}

// LingerZero sets SO_LINGER 0 on the connection at the bottom of c's
// layers when it can (TCP), so that its close, whoever makes it, sends an
// RST. It waits for nothing (a Close waits for a read in flight, so a
// bufferevent's own callbacks must not close its socket) and reports
// whether c had a connection under it (false for a nil c).
func LingerZero(c net.Conn) bool {
	c = Innermost(c)
	if c == nil {
		return false
	}
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0) //nolint:errcheck // best effort: the close ends the connection either way
	}
	return true
}
