package pipeline

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Sentinel errors. Every error the package returns or reports as an event
// cause wraps one of these, or the cause it got from below (a transport,
// crypto/tls, compress/flate), with %w, so errors.Is sees through stages,
// filters and the [Conn] view.
var (
	// ErrInvalid is wrapped by errors about bad arguments: a nil
	// bufferevent or TLS config, an unknown compression format, a bad
	// compression level, a negative frame size.
	ErrInvalid = errors.New("pipeline: invalid argument")

	// ErrClosed is wrapped by the errors of a [Conn] after Close, after
	// CloseWrite (for writes), and after its bufferevent stopped. It
	// matches net.ErrClosed too, since that is what net.Conn users test.
	ErrClosed = fmt.Errorf("pipeline: %w", net.ErrClosed)

	// ErrFrameTooLarge is the cause when a length-prefixed frame claims
	// more than the decoder's maximum. The decoder fails on the header
	// alone: it never buffers or allocates the claimed size.
	ErrFrameTooLarge = errors.New("pipeline: frame too large")

	// ErrLineTooLong is the cause when a line decoder sees more than its
	// maximum without an end of line.
	ErrLineTooLong = errors.New("pipeline: line too long")

	// ErrTruncated is the cause when the stream ends (an input stage is
	// flushed with Finished) inside a frame or a compressed stream.
	ErrTruncated = errors.New("pipeline: stream truncated")

	// ErrTrailingData is the cause when bytes follow the end of a
	// compressed stream that cannot have a successor (flate, zlib).
	ErrTrailingData = errors.New("pipeline: data after end of stream")

	// ErrCorrupt is the cause when compressed input is malformed.
	ErrCorrupt = errors.New("pipeline: corrupt input")

	// ErrDirtyShutdown is the cause of the Error event when a TLS peer
	// ends the stream without close_notify (see [TLSOptions]).
	ErrDirtyShutdown = errors.New("pipeline: TLS peer closed without close_notify")

	// ErrUnknownResult is the cause when a stage inside a [Chain] returns
	// a result other than OK, NeedMore or Failed.
	ErrUnknownResult = errors.New("pipeline: stage returned an unknown result")
)

// wrap adds context to err, a cause that may come from this package (a
// stage's error, a TLS error about the view's own read) or from outside
// it, saying the package's prefix once: err's text carries it already
// when err comes from here.
func wrap(err error, context string) error {
	if strings.Contains(err.Error(), "pipeline: ") {
		return fmt.Errorf("%s: %w", context, err)
	}
	return fmt.Errorf("pipeline: %s: %w", context, err)
}
