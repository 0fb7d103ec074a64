package clock

import (
	"context"
	"time"
)

// ctxKey is the key of the clock a context carries.
type ctxKey struct{}

// NewContext returns a copy of ctx that carries c (the real clock for a
// nil c), for code that runs on behalf of something with a clock of its
// own: a bufferevent hands its Base's clock to a dial and a transport's
// handshake this way, so that a bound they set themselves follows the
// clock a test injected. The real clock given to a ctx that carries no
// clock returns ctx itself, which FromContext reads as the real clock
// already: a connection on the real clock pays no allocation for it.
func NewContext(ctx context.Context, c Clock) context.Context {
	c = OrReal(c)
	if _, real := c.(realClock); real && ctx.Value(ctxKey{}) == nil {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the clock ctx carries (see NewContext), or the
// real clock when it carries none.
func FromContext(ctx context.Context) Clock {
	c, _ := ctx.Value(ctxKey{}).(Clock)
	return OrReal(c)
}

// WithTimeoutCause is context.WithTimeoutCause measured on the clock ctx
// carries (FromContext): the returned context is done, with cause, once
// that clock has moved d on, or when ctx is done or cancel is called. On
// the real clock it is context.WithTimeoutCause itself (ctx.Err() is then
// context.DeadlineExceeded); on another it has no Deadline and ctx.Err()
// is context.Canceled once it ends, so tell a timeout by its cause
// (context.Cause).
func WithTimeoutCause(ctx context.Context, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	c := FromContext(ctx)
	if _, ok := c.(realClock); ok {
		return context.WithTimeoutCause(ctx, d, cause)
	}
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	t := c.AfterFunc(d, func() { cancelCause(cause) })
	return ctx, func() {
		t.Stop()
		cancelCause(nil)
	}
}
