package conn

import "net"

// TCP keep-alive is off on bev's sockets unless asked for, as on
// libevent's: Go's net.Listen and zero net.Dialer turn it on for every
// TCP connection (probes after 15 s idle), which costs four setsockopt
// calls per connection, a fifth of what a relayed connection spends in
// system calls. A bufferevent's read and write timeouts (SetTimeouts) are
// how a bev program notices a peer gone quiet; keep-alive is for the peer
// that vanished without a word while nothing is being sent, and a program
// that wants it asks: ListenerConfig.KeepAlive for accepted connections,
// ConnectWith with a net.Dialer of its own (or SetKeepAliveConfig on the
// connection once Connected) for connected ones.

// noKeepAlive is the dialer ConnectAddr and ConnectHostname use: Go's
// defaults but for keep-alive, which is off.
var noKeepAlive = net.Dialer{KeepAlive: -1}

// listenConfig is the net.ListenConfig of Listen: keep-alive as ka says
// (Enable set: on, with its Idle, Interval and Count; else off).
func listenConfig(ka net.KeepAliveConfig) *net.ListenConfig {
	return &net.ListenConfig{KeepAlive: -1, KeepAliveConfig: ka}
}
