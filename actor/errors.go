package actor

import "errors"

// Sentinel errors. Every error the package returns wraps one of these (or
// the transport's own cause) with %w, so errors.Is sees through it.
var (
	// ErrClosed is returned by every method of a bufferevent after Close or
	// Free, and is the cause reported once it has stopped.
	ErrClosed = errors.New("actor: bufferevent closed")

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
