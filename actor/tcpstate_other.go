//go:build !linux

package actor

// tcpClosed reports false: only Linux is asked for a socket's TCP state.
func tcpClosed(Transport) bool { return false }
