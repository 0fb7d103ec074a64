package actor

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
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
//     connection needs no reader loop at all.
//
// All are optimisations of the one mechanism, not a second one: the
// actor, the loops and every event are the same for every transport.
// newSysConn returns nil where the platform has no such door (see
// sysconn_linux.go), and the bufferevent then uses Read and Write alone.
type sysConn interface {
	// tryWrite writes what of bufs the kernel takes now, in one vectored
	// write, and returns how much that was; (0, nil) means it took
	// nothing. It never blocks.
	tryWrite(bufs [][]byte) (int64, error)
	// read reads at most room bytes into a new chunk, first waiting until
	// the socket is readable when wait is set. It returns (c, nil) with c
	// holding at least one byte, or (nil, err): io.EOF at the end of the
	// stream, the socket's error otherwise, or the deadline or close
	// error that unblocked the wait. Without wait, (nil, nil) means
	// nothing was there to read.
	read(room int, wait bool) (*chunk, error)
}

// maxWriteSlices bounds the views of one write (see writeBatch): one
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

// A parker lets the actor of a socket wait for the socket itself when it
// has nothing else to wait for: instead of a reader loop blocking in read
// and handing each read over (a goroutine wake, and on an idle
// multi-core machine a wake of another thread, per message), the actor
// waits in the socket's read through its side door and reads what comes
// on its own goroutine, as a goroutine-per-connection server does.
//
// While it waits there, the actor cannot see its mailbox, so whoever
// posts to it (every wake-up goes through mailbox.notify) or completes a
// write for it (the writer loop) kicks it: sets a read deadline in the
// past, which ends the wait at once. The actor clears the deadline when it
// wakes. The states make that exact: only a kicker that moves the parker
// from waiting to kicked touches the deadline, and the actor, seeing it
// was kicked, takes mu, which the kicker holds until the deadline is set,
// before clearing it; so no past deadline outlives a kick.
type parker struct {
	state atomic.Int32 // parkRunning, parkWaiting or parkKicked
	mu    sync.Mutex   // held by a kicker while it sets the deadline
	conn  deadliner
}

const (
	parkRunning = iota // the actor is not waiting in the socket
	parkWaiting        // the actor waits in the socket's read
	parkKicked         // a kicker ended (or is ending) the wait
)

// wait marks the actor as waiting in the socket; the actor then looks
// once more at what a kick would have told it, before it waits.
func (p *parker) wait() { p.state.Store(parkWaiting) }

// done marks the actor as running again and reports whether it was
// kicked, clearing the kick's deadline if so.
func (p *parker) done() (kicked bool) {
	if p.state.CompareAndSwap(parkWaiting, parkRunning) {
		return false
	}
	p.mu.Lock()
	p.conn.SetReadDeadline(time.Time{})
	p.state.Store(parkRunning)
	p.mu.Unlock()
	return true
}

// kick ends the actor's wait in the socket, if it is waiting there. It is
// cheap when it is not: one atomic load.
func (p *parker) kick() {
	if p.state.Load() != parkWaiting {
		return
	}
	p.mu.Lock()
	if p.state.CompareAndSwap(parkWaiting, parkKicked) {
		p.conn.SetReadDeadline(aLongTimeAgo)
	}
	p.mu.Unlock()
}

// aLongTimeAgo is a deadline that has passed: setting it ends a wait.
var aLongTimeAgo = time.Unix(1, 0)
