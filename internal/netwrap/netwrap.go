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
