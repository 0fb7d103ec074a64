package actor

import (
	"context"
	"io"
	"time"
)

// Transport is the byte stream a bufferevent pumps: a net.Conn, one end of
// an in-memory pair, or a view of another bufferevent. The bufferevent's
// reader loop is the only caller of Read (and ReadBuffer) and its writer
// loop the only caller of Write (and of WriteBuffer, but for the actor's
// non-waiting offer, made only while the writer loop is idle), so a
// Transport need not serialise them; Close may be
// called from another goroutine while either is blocked and must unblock
// both. A net.Conn satisfies Transport as it is, and a *net.TCPConn gets
// vectored writes (writev) for batched output. On Linux a *net.TCPConn or
// *net.UnixConn is also read and written through its syscall.RawConn
// (non-blocking writes from the actor, reads that wait for readability
// before taking a buffer, made by the actor itself while it has nothing
// else to wait for, its read deadline then serving to wake it): for those
// two types Read is not called, and Write only for what the kernel did not
// take at once. Any other type, including one that wraps them, is used
// through its methods only.
//
// A Transport may also implement these methods, which the bufferevent uses
// when present:
//
//	Handshake(ctx context.Context) error // run before the first read or write (Handshaker)
//	CloseWrite() error                 // half-close after Flush(Write, Finished)
//	SetReadDeadline(time.Time) error   // unblock Read without closing
//	SetWriteDeadline(time.Time) error  // unblock Write without closing
//	Drain(ctx context.Context) error   // push every byte on before Close (filters)
//	Underlying() *Bufferevent          // the bufferevent under a filter (Conn, Underlying)
//	WriteLimit() int                   // room for an output stage; -1 for no limit
//	Buffered() int                     // bytes written that it still holds downstream
//	NotifyProgress(wake func())        // call wake when held bytes move on
//	WriteBuffer(src *Buffer, wait bool) (int64, error) // BufferWriter: take whole chunks
//	ReadBuffer(dst *Buffer, max int) (int, error)      // BufferReader: give whole chunks
//	TryReadBuffer(dst *Buffer, max int) (int, error)   // with NotifyReadable: read by the actor
//	NotifyReadable(wake func())                        // call wake when TryReadBuffer may find more
//
// The last two let bytes cross by ownership instead of by copy: see
// [BufferWriter] and [BufferReader]. A pair's pipe and a filter's view of
// its underlying bufferevent implement both, so bulk data moves from one
// bufferevent's output to another's input as chunk pointers.
//
// Buffered and NotifyProgress are for transports that are themselves
// buffered, such as a filter's view of its underlying bufferevent: the write timeout then runs
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

// Handshaker is the optional Transport method of a stream that runs a
// handshake before it carries bytes, such as a TLS connection (package
// conn/tlsconn's sockets). A Handshaker given to New or SetTransport is
// not read nor written until its handshake has run: the bufferevent calls
// Handshake once, on a goroutine it owns, as soon as it first wants I/O
// (reading is enabled, output waits with writing enabled, or a half-close
// or drain waits), so every method that asks for I/O starts it, whichever
// type it is reached through. While it runs the bufferevent is
// connecting, as during Connect: the write timeout runs, Connect and
// SetTransport fail with ErrBusy, writes are held, and Close cancels ctx
// (which carries the Base's clock: clock.FromContext)
// and waits for Handshake to return. Then the bufferevent reports one
// event: Connected, after which it reads and writes the transport, or
// Error with Handshake's error, after which it closes the transport and
// drops it. The transport is the bufferevent's from the start, so Conn
// returns it (its addresses are known) while the handshake waits or runs.
//
// A transport made by Connect's dial is used as it is: the dial runs any
// handshake it needs.
type Handshaker interface {
	Handshake(ctx context.Context) error
}

// BufferWriter is the optional Transport method by which a bufferevent
// hands over whole chunks of its output instead of lending views of it to
// Write.
//
// WriteBuffer takes src's bytes from the front by ownership, moving its
// chunks (the transport may keep them, pass them on, or release them by
// draining), and returns how many bytes it took. src holds at most the
// per-write maximum and what the write rate limit allows; the transport
// must not keep src itself after returning.
//
// With wait set, WriteBuffer blocks until it has taken all of src or
// fails, as Write does; the writer loop calls it so. With wait unset it
// must not block: it takes what it can at once, possibly nothing, and
// returns (0, nil) when it takes nothing; the actor calls it so first, on
// its own goroutine (only when no rate limit applies), and hands what is
// left to the writer loop. Either way, with an error what is still in src
// stays the caller's, and the bufferevent reports the error as a
// Writing|Error event; a count that does not match what src lost is an
// error wrapping ErrInvalid, and a waiting call that returns early
// without an error is io.ErrShortWrite.
//
// When the first chunk of the output is larger than the per-write maximum
// or the rate allowance, the bufferevent hands over its head, copied into
// a chunk of its own, so a small per-write maximum or allowance still makes
// small writes; Write is not called on a BufferWriter.
type BufferWriter interface {
	WriteBuffer(src *Buffer, wait bool) (int64, error)
}

// BufferReader is the optional Transport method by which the reader loop
// takes whole chunks instead of reading into a chunk of its own.
//
// ReadBuffer blocks until it can move at least one byte, then appends at
// most max bytes (max > 0; the read high watermark, the per-read maximum
// and the rate limit set it) to dst by ownership, moving whole chunks
// where it can (Buffer.MoveFromN), and returns how many. It returns 0 and
// io.EOF at the end of the stream, and 0 with an error as Read does. The
// reader loop is its only caller and owns dst, which it hands to the
// actor afterwards; the transport must not touch dst after returning. A
// count that does not match what dst gained ends reading with an error
// wrapping ErrInvalid.
type BufferReader interface {
	ReadBuffer(dst *Buffer, max int) (int, error)
}

// readPuller is a transport that holds its input in memory, as a filter's
// view of its underlying bufferevent does, and lets the actor take it on
// its own goroutine: the read-side twin of BufferWriter's offer without
// waiting. For such a transport the actor starts no reader loop while no
// rate limit applies, so what the transport receives reaches the actor
// without a hop through another goroutine.
//
// TryReadBuffer is ReadBuffer (see BufferReader) without waiting: it
// returns 0 and a nil error when nothing is there, 0 and io.EOF at the
// end of the stream. The actor calls it on each of its turns while its
// read limits allow (after a call that returned fewer bytes than asked,
// once more at once, for an end or an error left behind them).
// NotifyReadable hands the transport the function to call, from any
// goroutine and without blocking, whenever TryReadBuffer may find
// something new (bytes, the end, an error) after a call that found
// nothing; the actor passes nil
// when it lets go of the transport (the old function stays harmless, so a
// call racing with that needs no care). When a rate limit applies the
// actor passes nil and reads through the reader loop (ReadBuffer) from
// then on, since a bucket has to be waited for.
type readPuller interface {
	TryReadBuffer(dst *Buffer, max int) (int, error)
	NotifyReadable(wake func())
}

type closeWriter interface{ CloseWrite() error }

type progressNotifier interface{ NotifyProgress(wake func()) }

type bufferedTransport interface{ Buffered() int }

type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}
