package actor

import (
	"io"
	"time"
)

// Transport is the byte stream a bufferevent pumps: a net.Conn, one end of
// an in-memory pair, or a view of another bufferevent. The bufferevent's
// reader loop is the only caller of Read and its writer loop the only
// caller of Write, so a Transport need not serialise them; Close may be
// called from another goroutine while either is blocked and must unblock
// both. A net.Conn satisfies Transport as it is, and a *net.TCPConn gets
// vectored writes (writev) for batched output. On Linux a *net.TCPConn or
// *net.UnixConn is also read and written through its syscall.RawConn
// (non-blocking writes from the actor, reads that wait for readability
// before taking a buffer): for those two types Read is not called, and
// Write only for what the kernel did not take at once. Any other type,
// including one that wraps them, is used through its methods only.
//
// A Transport may also implement these methods, which the bufferevent uses
// when present:
//
//	CloseWrite() error                 // half-close after Flush(Write, Finished)
//	SetReadDeadline(time.Time) error   // unblock Read without closing
//	SetWriteDeadline(time.Time) error  // unblock Write without closing
//	Drain(ctx context.Context) error   // push every byte on before Close (filters)
//	Underlying() *Bufferevent          // the bufferevent under a filter (Conn, Underlying)
//	WriteLimit() int                   // room for an output stage; -1 for no limit
//	Buffered() int                     // bytes written that it still holds downstream
//	NotifyProgress(wake func())        // call wake when held bytes move on
//
// The last two are for transports that are themselves buffered, such as a
// filter's view of its underlying bufferevent: the write timeout then runs
// while the transport holds bytes (so a stalled peer is noticed however
// few bytes are stuck). The bufferevent gives the transport a wake
// function when it attaches it (and nil when it lets go); calling it,
// from any goroutine and without blocking, restarts the write timeout and
// makes the bufferevent re-evaluate WriteLimit. Buffered having shrunk
// since the timeout was armed, checked when it expires, counts as progress
// too.
type Transport interface {
	io.Reader
	io.Writer
	io.Closer
}

type closeWriter interface{ CloseWrite() error }

type progressNotifier interface{ NotifyProgress(wake func()) }

type bufferedTransport interface{ Buffered() int }

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}
