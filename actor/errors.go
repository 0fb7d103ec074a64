package actor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
)

// Sentinel errors. Every error the package returns wraps one of these (or
// the transport's own cause) with %w, so errors.Is sees through it.
var (
	// ErrClosed is returned by every method of a bufferevent after Close or
	// Free, and is the cause reported once it has stopped. It matches
	// net.ErrClosed too under errors.Is, since that is what users of
	// net.Conn test for.
	ErrClosed error = closedError{}

	// ErrInvalid is wrapped by every error about a bad argument: a nil
	// buffer, negative or inverted watermarks, an unknown flush mode, an
	// unknown direction, and so on.
	ErrInvalid = errors.New("actor: invalid argument")

	// ErrFrozen is returned when a buffer operation touches an end of a
	// buffer that its owner has frozen: the front of a bufferevent's
	// output (bytes the writer loop may be sending) or the end of its
	// input (where the reader loop appends).
	ErrFrozen = errors.New("actor: buffer end is frozen")

	// ErrNoLine is returned by [Buffer.ReadLine] when the buffer does not
	// hold a complete line in the requested [EOLStyle]. The buffer is left
	// unchanged; the caller should wait for more input and try again.
	ErrNoLine = errors.New("actor: no complete line buffered")
)

// More sentinels, for the actor.
var (
	// ErrTimeout is the cause given with a Timeout event. It reports
	// Timeout() == true and matches os.ErrDeadlineExceeded with errors.Is.
	ErrTimeout error = timeoutError{}

	// ErrNoTransport is returned by operations that need a transport
	// (Connect excepted) on a bufferevent that has none yet.
	ErrNoTransport = errors.New("actor: bufferevent has no transport")

	// ErrBusy is returned by Connect and SetTransport while a connect is
	// already in flight.
	ErrBusy = errors.New("actor: connect already in progress")

	// ErrPanic is wrapped by the *PanicError that closes a bufferevent
	// whose callback or stage panicked.
	ErrPanic = errors.New("actor: callback panicked")

	// ErrOutputLost is wrapped, with the write's cause, by the error
	// Drain returns when a write to the transport, or its half-close,
	// failed (a reset, a broken pipe) before all the output was written
	// and the transport half-closed: what was not written is lost, and
	// what the transport held may be.
	ErrOutputLost = errors.New("actor: output lost")
)

// newPanicError returns the *PanicError of r, a value recovered from a
// panic, with the stack of the goroutine that panicked: call it in the
// deferred function that recovered.
func newPanicError(r any) *PanicError {
	return &PanicError{Value: r, Stack: debug.Stack()}
}

// closedError is ErrClosed: its own sentinel that is also net.ErrClosed.
type closedError struct{}

// Error returns the message of ErrClosed.
func (closedError) Error() string { return "actor: bufferevent closed" }

// Is reports that ErrClosed is also net.ErrClosed.
func (closedError) Is(target error) bool {
	return target == net.ErrClosed
}

// errZero is the error of every method of a Bufferevent or Base that was
// not made by its constructor (a zero value or a nil pointer).
var errZero = fmt.Errorf("%w: bufferevent or base not made by its constructor (New, NewPair, NewBase)", ErrInvalid)

// timeoutError is the cause of a Timeout event.
type timeoutError struct{}

// Error returns the message of ErrTimeout.
func (timeoutError) Error() string { return "actor: timeout" }

// Timeout reports true, as a net.Error's timeout.
func (timeoutError) Timeout() bool { return true }

// Temporary reports true, as net's deadline error does.
func (timeoutError) Temporary() bool { return true }

// Is reports that ErrTimeout is also os.ErrDeadlineExceeded.
func (timeoutError) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// PanicError carries the value and stack of a panic in a callback or stage.
// It is the cause of the Error event that closes the bufferevent, and what
// Err returns afterwards. errors.Is(err, ErrPanic) reports true.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("actor: callback panicked: %v\n%s", e.Value, e.Stack)
}

// Unwrap returns ErrPanic, and the panic value too when it is an error.
func (e *PanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrPanic, err}
	}
	return []error{ErrPanic}
}
