package actor

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// maxIovecs bounds one vectored write: the most views a write has
// (viewSink.take).
const maxIovecs = maxWriteSlices

// sysRead is one read(2) of p on fd. It goes through syscall.RawSyscall,
// which skips the scheduler's bookkeeping around a system call
// (entersyscall and exitsyscall): a socket here is non-blocking, so the
// read never waits, and only its copy takes time, at most one read chunk
// (maxReadChunk: tens of microseconds), during which the goroutine keeps
// its P. A read of more (none is made) would go through syscall.Syscall,
// so that a longer copy never holds a P, nor delays a stop of the world,
// unseen. Under the race detector it goes through syscall.Read, which
// tells the detector what the kernel wrote.
//
// Writes are not raw (writev): the bookkeeping is what wakes the runtime's
// monitor thread (sysmon), which sleeps once every P is idle, and whose
// polling while replies flow keeps an idle CPU quick to wake. Plain Go
// pays it on every call; without it, bev's round trips of small messages
// on a lightly loaded machine took 11-33% longer than plain Go's
// (docs/design.md, "A read").
func sysRead(fd uintptr, p []byte) (int, error) {
	if raceEnabled {
		return syscall.Read(int(fd), p)
	}
	// Direct calls, not through a variable: only a direct call keeps p's
	// array alive and in place for the kernel (unsafe.Pointer's rule 4).
	var r uintptr
	var e syscall.Errno
	if len(p) <= maxReadChunk {
		r, _, e = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	} else {
		r, _, e = syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	}
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// iovecs are pooled: a socket holds its array only during a write, so an
// idle connection holds none.
type iovecs [maxIovecs]syscall.Iovec

var iovPool = sync.Pool{New: func() any { return new(iovecs) }}

// rawSocket implements sysConn over a socket's syscall.RawConn. The
// callbacks RawConn takes are made once, as method values, and their
// arguments and results travel in the struct, so a read or a write
// allocates nothing. Each half of the struct has one user at a time:
// tryWrite's half is the actor's (only the actor writes directly); read's
// half belongs to whoever reads the socket, which is the actor itself
// while it parks in the socket (actorState.waitInSocket) and the reader loop
// once the actor has started it (transportIO.startReader; a socket's
// actor never parks again after that, see actorState.waitInSocket).
type rawSocket struct {
	conn net.Conn
	rc   syscall.RawConn
	nw   string // "tcp" or "unix", for errors shaped like net's

	// tryWrite's arguments and results.
	writeFn func(fd uintptr) bool
	iov     []syscall.Iovec // during tryWrite: one's, or a pooled array's first n
	one     [1]syscall.Iovec
	wn      int64
	werr    error

	// waitRoom's state and callback.
	roomFn func(fd uintptr) bool
	looked bool // roomFn was called once: the next call is after a wait

	// readInto's arguments and results.
	readFn func(fd uintptr) bool
	room   int
	wait   bool
	dst    *Buffer
	rn     int
	rerr   error
}

// newSysConn returns the side door of c, or nil when c gives no raw
// connection.
func newSysConn(c interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
}, nw string) sysConn {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSocket{conn: c, rc: rc, nw: nw}
	s.writeFn = s.writev
	s.readFn = s.readOnce
	s.roomFn = s.roomOnce
	return s
}

// tryWrite is sysConn.tryWrite: one write of up to maxIovecs of bufs; a
// single buffer (a request, a reply: most writes of a busy connection
// that keeps up) goes in a write(2) and needs no pooled array, several in
// a writev(2).
func (s *rawSocket) tryWrite(bufs [][]byte) (int64, error) {
	var iovs *iovecs
	s.iov = s.one[:0]
	for _, p := range bufs {
		if len(p) == 0 {
			continue
		}
		if len(s.iov) == 1 && iovs == nil {
			iovs = iovPool.Get().(*iovecs)
			iovs[0] = s.one[0]
			s.iov = iovs[:1]
		}
		if len(s.iov) == maxIovecs {
			break
		}
		v := syscall.Iovec{Base: &p[0]}
		v.SetLen(len(p))
		s.iov = append(s.iov, v)
	}
	if len(s.iov) == 0 {
		return 0, nil
	}
	s.wn, s.werr = 0, nil
	err := s.rc.Write(s.writeFn)
	clear(s.iov) // drop the references into the output
	s.iov = nil
	if iovs != nil {
		iovPool.Put(iovs)
	}
	if err != nil {
		// The descriptor is closed or past its write deadline.
		return 0, err
	}
	return s.wn, s.werr
}

// writev is tryWrite's callback: one attempt, never a wait, through
// syscall.Syscall, as net.Conn's writes go (see sysRead for why not raw).
func (s *rawSocket) writev(fd uintptr) bool {
	trap, arg, name := uintptr(syscall.SYS_WRITEV), uintptr(unsafe.Pointer(&s.iov[0])), "writev"
	n := uintptr(len(s.iov))
	if len(s.iov) == 1 {
		trap, arg, n, name = syscall.SYS_WRITE, uintptr(unsafe.Pointer(s.iov[0].Base)), uintptr(s.iov[0].Len), "write"
	}
	for {
		r, _, e := syscall.Syscall(trap, fd, arg, n)
		switch e {
		case 0:
			s.wn = int64(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// The kernel's buffer is full: the writer loop will wait.
		default:
			s.werr = s.opError("write", os.NewSyscallError(name, e))
		}
		return true
	}
}

// waitRoom is sysConn.waitRoom: RawConn.Write waits for writability
// each time its callback returns false. It writes nothing: the caller's
// next tryWrite does.
func (s *rawSocket) waitRoom() error {
	s.looked = false
	return s.rc.Write(s.roomFn)
}

// roomOnce is waitRoom's callback: it reports whether the socket has room
// now, looking without waiting (poll(2)), and after a wait, that it has.
// The look must be made inside the RawConn.Write: the runtime's poller
// forgets, as the call starts, a writability it was told of before, so a
// wait that did not look first would miss room made between the short
// write and the wait, and could wait for good (as it did, 1 run in ~30,
// before the look).
func (s *rawSocket) roomOnce(fd uintptr) bool {
	if s.looked {
		return true
	}
	s.looked = true
	return writable(fd)
}

// pollOut is poll(2)'s POLLOUT.
const pollOut = 0x4

// writable reports whether fd may be written now, or has an error a write
// will report: one ppoll(2) that does not wait.
func writable(fd uintptr) bool {
	pfd := struct {
		fd             int32
		events, revent int16
	}{fd: int32(fd), events: pollOut}
	var ts syscall.Timespec // zero: do not wait
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		return e != 0 || n > 0
	}
}

// readInto is source.readInto: one read(2) of up to max bytes, through
// readOnce, first waiting for readability when wait is set.
func (s *rawSocket) readInto(dst *Buffer, max int, wait bool) (int, error) {
	s.room, s.wait, s.rn, s.rerr = max, wait, 0, nil
	s.dst = dst
	err := s.rc.Read(s.readFn)
	s.dst = nil
	if err != nil {
		return 0, err // closed, or past the read deadline
	}
	return s.rn, s.rerr
}

// readOnce is readInto's callback: it takes a chunk only to read into it,
// and gives it back when the socket turns out not to be readable, so a
// reader waiting on an idle connection holds none.
func (s *rawSocket) readOnce(fd uintptr) bool {
	c := newReadChunk(s.room)
	p := c.free()[:s.room]
	for {
		n, err := sysRead(fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.release()
			return !s.wait // false: wait for readability
		case err != nil:
			c.release()
			s.rerr = s.opError("read", os.NewSyscallError("read", err))
		case n == 0:
			c.release()
			s.rerr = io.EOF
		default:
			c.commit(n)
			s.dst.push(c)
			s.rn = n
		}
		return true
	}
}

// opError shapes an error as the net package's own Read and Write do, so
// that a caller's errors.As(err, *net.OpError) and errors.Is(err,
// syscall.ECONNRESET) see the same thing on either path.
func (s *rawSocket) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: s.nw, Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: err}
}
