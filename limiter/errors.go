package limiter

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors. Every error the package returns wraps one of these, or
// the context's error and cause, with %w, so errors.Is sees through it.
var (
	// ErrInvalidConfig is wrapped by every error about a bad token-bucket
	// configuration: a nil config, a tick under one millisecond or over
	// math.MaxInt32/1000 seconds, a rate under 1, a rate above its burst.
	ErrInvalidConfig = errors.New("limiter: invalid config")

	// ErrInvalid is wrapped by every error about another bad argument: an
	// unknown [Dir], a negative min share, a Join on a [Group] not made by
	// [NewGroup] or [NewSharedGroup].
	ErrInvalid = errors.New("limiter: invalid argument")

	// ErrGroupBusy is wrapped by the error [Group.Close] returns while the
	// group still has members.
	ErrGroupBusy = errors.New("limiter: group still has members")

	// ErrClosed is wrapped by the error [Group.Join] returns after the
	// group has been closed.
	ErrClosed = errors.New("limiter: group closed")
)

// waitError is the error a Wait returns when ctx ends first. Unlike
// x/time/rate's formatted errors it wraps ctx.Err(), so errors.Is with
// context.Canceled or context.DeadlineExceeded works, and also the cause
// given to context.WithCancelCause when there is a distinct one.
func waitError(ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	if cause == nil || cause == err {
		return fmt.Errorf("limiter: wait: %w", err)
	}
	return fmt.Errorf("limiter: wait: %w: %w", err, cause)
}
