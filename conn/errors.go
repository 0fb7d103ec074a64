package conn

import "errors"

// Sentinel errors. Errors about bad arguments wrap both one of these and
// actor.ErrInvalid, so either test with errors.Is works.
var (
	// ErrNetwork is wrapped by the error ConnectHostname returns at once
	// for a network other than "tcp", "tcp4" or "tcp6".
	ErrNetwork = errors.New("conn: unsupported network")

	// ErrPort is wrapped by the error ConnectHostname returns at once for
	// a port outside 1–65535.
	ErrPort = errors.New("conn: port out of range")

	// ErrListenerClosed is returned by Listener.Accept after the listener
	// has stopped.
	ErrListenerClosed = errors.New("conn: listener closed")

	// ErrAcceptPanic is wrapped, with the *actor.PanicError, by the error
	// a Listener passes to ListenerConfig.OnError when its accept
	// callback panicked, or the user code it runs to make each socket
	// (ListenerConfig.Layer or Stages, the layer's Wrap).
	ErrAcceptPanic = errors.New("conn: accept callback panicked")
)
