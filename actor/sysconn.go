package actor

import (
	"net"
)

// sysConn is the side door of a socket transport (a *net.TCPConn or a
// *net.UnixConn) into its file descriptor, through syscall.RawConn. It
// lets the bufferevent do two things the net.Conn interface cannot:
//
//   - the actor writes without blocking (tryWrite): a write that fits in
//     the kernel's buffer, which is nearly every write of an interactive
//     connection, needs no hand-off to the writer loop, so an echo crosses
//     two goroutines instead of three. What does not fit goes to the
//     writer loop as before, which blocks for it.
//   - reads wait for data without holding a buffer (read): the chunk is
//     taken from the pool only once the socket is readable, so an idle
//     connection holds no read buffer at all.
//   - the actor itself waits in the socket and reads it while nothing
//     else needs waiting for (see parker), so that an interactive
//     connection needs no reader loop at all; and, while it does not
//     want to read, it waits there for room to write what the kernel did
//     not take (waitRoom), so that a stream whose reading pauses on
//     backpressure needs no writer loop either.
//
// They are the socket's part of the one mechanism, not routes of their
// own: the socket is a source (readInto) as every transport is, and a
// sink's direct write (see sink) as every transport may offer one.
// newSysConn returns nil where the platform has no such door (see
// sysconn_linux.go), and the bufferevent then uses Read and Write alone.
type sysConn interface {
	// tryWrite writes what of bufs the kernel takes now, in one system
	// call (writev(2), or write(2) for a single buffer), and returns how
	// much that was; (0, nil) means it took nothing. It never blocks.
	tryWrite(bufs [][]byte) (int64, error)
	// waitRoom waits until the socket may take more (after a tryWrite
	// the kernel did not take whole), or until its write deadline passes
	// (the parker's wake-up, see parker) or it is closed, which it
	// returns. It may return early, on a readiness older than that
	// tryWrite: the next tryWrite then takes nothing and the caller waits
	// again.
	waitRoom() error
	// source: one read of at most max bytes into a chunk taken only
	// once the socket is readable, so that a wait holds no buffer.
	source
}

// maxWriteSlices bounds the views of one write (see viewSink.take): one
// writev's iovecs on a socket. IOV_MAX is 1024 on Linux; 64 holds a
// whole per-write maximum (DefaultMaxWrite) of 4 KiB chunks, the size a
// socket's reads start at, and the array is pooled, so an idle connection
// holds none.
const maxWriteSlices = 64

// socketOf returns the sysConn of t when t is a plain socket this
// platform has a side door for, else nil. Only the concrete socket types
// qualify: a type that wraps one (a TLS conn, a test's fault injector) may
// change what Read and Write do, so it keeps its own methods.
func socketOf(t Transport) sysConn {
	switch c := t.(type) {
	case *net.TCPConn:
		return newSysConn(c, "tcp")
	case *net.UnixConn:
		return newSysConn(c, "unix")
	}
	return nil
}
