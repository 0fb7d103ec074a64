package pipeline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/clock"
)

// TLSOptions configures a TLS bufferevent. The zero value means the
// defaults.
type TLSOptions struct {
	// Options are the TLS bufferevent's options. With CloseOnFree,
	// closing it closes the underlying, and so does a failed handshake
	// (after the TLS alert is written).
	Options actor.Option
	// DirtyShutdown reports a peer that ends the stream without
	// close_notify as EOF instead of Error (libevent's
	// BUFFEREVENT_SSL_DIRTY_SHUTDOWN). A stream cut inside a TLS record is
	// an Error either way.
	DirtyShutdown bool
	// HandshakeTimeout bounds the handshake, from its start, on the
	// Base's clock (actor.Base.Clock), as the bufferevent's own
	// timeouts are: zero means
	// DefaultHandshakeTimeout, a negative value no bound of its own (the
	// bufferevent's write timeout still runs during the handshake, and
	// Close ends it). A handshake that takes longer fails with an Error
	// event whose cause wraps actor.ErrTimeout (which matches
	// os.ErrDeadlineExceeded).
	HandshakeTimeout time.Duration
}

// DefaultHandshakeTimeout bounds a TLS bufferevent's handshake when
// TLSOptions.HandshakeTimeout is zero: as long as net/http's servers
// commonly allow a client for its headers, so that a peer that stops
// mid-handshake does not hold the bufferevent.
const DefaultHandshakeTimeout = 10 * time.Second

// NewTLSClient returns a bufferevent that runs the client side of
// crypto/tls over underlying (libevent's bufferevent_openssl_filter_new in
// the connecting state); see [NewTLSServer], which it mirrors. It fails
// as NewTLSServer does: with an error wrapping ErrInvalid for a nil
// underlying or cfg, ErrClosed when the underlying has stopped, and as
// actor.New does.
func NewTLSClient(underlying *actor.Bufferevent, cfg *tls.Config, opts TLSOptions) (*actor.Bufferevent, error) {
	return newTLS(underlying, cfg, opts, false)
}

// NewTLSServer returns a bufferevent that runs the server side of
// crypto/tls over underlying (libevent's bufferevent_openssl_filter_new in
// the accepting state). Underlying may be any bufferevent: a socket, one
// end of a pair, or another filter.
//
// The handshake starts at once, on a goroutine the bufferevent owns (see
// actor.Bufferevent.Connect). When it completes the event callback gets
// Connected, on both sides; when it fails, Error with the crypto/tls
// cause (or, after TLSOptions.HandshakeTimeout, one wrapping
// actor.ErrTimeout), and no data callbacks. Output written before that is held and
// sent afterwards. The TLS bufferevent takes over the underlying as
// [NewFilter] does: its Underlying and Conn methods report the
// underlying's once the handshake is done, the underlying's Timeout
// events are passed on, and its Connected is not.
//
// Closing is as for a TLS socket. Drain sends close_notify after the last
// byte, then drains and half-closes the underlying; Close is abrupt (no
// close_notify). A peer's close_notify is read as EOF; a peer that just
// closes its stream is an Error wrapping ErrDirtyShutdown, unless
// DirtyShutdown is set. libevent never sends close_notify, so its peers see
// every close as dirty; we send it on Drain.
//
// It fails with an error wrapping ErrInvalid for a nil underlying or cfg,
// ErrClosed when the underlying has stopped, and as actor.New does.
func NewTLSServer(underlying *actor.Bufferevent, cfg *tls.Config, opts TLSOptions) (*actor.Bufferevent, error) {
	return newTLS(underlying, cfg, opts, true)
}

// TLSState returns the connection state of a TLS bufferevent made by
// NewTLSClient or NewTLSServer, and false for any other bufferevent or
// before the handshake has completed.
func TLSState(b *actor.Bufferevent) (tls.ConnectionState, bool) {
	if t, ok := b.Transport().(*tlsTransport); ok {
		return t.tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

func newTLS(u *actor.Bufferevent, cfg *tls.Config, opts TLSOptions, server bool) (*actor.Bufferevent, error) {
	switch {
	case u == nil:
		return nil, fmt.Errorf("%w: nil underlying bufferevent", ErrInvalid)
	case cfg == nil:
		return nil, fmt.Errorf("%w: nil TLS config", ErrInvalid)
	case isDone(u.Done()):
		return nil, fmt.Errorf("new TLS: underlying: %w", ErrClosed)
	}
	f, err := actor.New(u.Base(), nil, opts.Options)
	if err != nil {
		return nil, err
	}
	c := newConn(u, closeFree, opts.Options&actor.CloseOnFree != 0)
	c.forwardConnected = false // ours comes when the handshake completes
	c.upper.Store(f)
	c.setForward(func(ev actor.Event) { f.TriggerEvent(ev, 0) })
	t := &tlsTransport{c: c, dirtyOK: opts.DirtyShutdown}
	if server {
		t.tc = tls.Server(c, cfg)
	} else {
		t.tc = tls.Client(c, cfg)
	}
	err = f.Connect(context.Background(), func(ctx context.Context) (actor.Transport, error) {
		d := opts.HandshakeTimeout
		if d == 0 {
			d = DefaultHandshakeTimeout
		}
		var timedOut error
		if d > 0 {
			timedOut = fmt.Errorf("no handshake within %v: %w", d, actor.ErrTimeout)
			var cancel context.CancelFunc
			ctx, cancel = clock.WithTimeoutCause(ctx, d, timedOut)
			defer cancel()
		}
		if err := t.tc.HandshakeContext(ctx); err != nil {
			if timedOut != nil && context.Cause(ctx) == timedOut {
				err = timedOut
			}
			t.abort(ctx)
			return nil, wrap(err, "TLS handshake")
		}
		return t, nil
	})
	if err != nil {
		c.Close()
		f.Close()
		return nil, err
	}
	return f, nil
}

// tlsTransport is a TLS bufferevent's transport: a tls.Conn over the view
// of the underlying. Like filterTransport it has no deadlines, so the
// actor closes it (detaching the view, without close_notify) whenever it
// drops it.
type tlsTransport struct {
	tc      *tls.Conn
	c       *Conn
	dirtyOK bool
}

// Read reads decrypted bytes. io.EOF after the peer's close_notify stays
// io.EOF; io.EOF because the underlying ended without one (crypto/tls
// accepts that at a record boundary) becomes a dirty-shutdown error
// unless allowed.
func (t *tlsTransport) Read(p []byte) (int, error) {
	n, err := t.tc.Read(p)
	if err == io.EOF && !t.dirtyOK && t.c.readEOF() {
		err = fmt.Errorf("%w: %w", ErrDirtyShutdown, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (t *tlsTransport) Write(p []byte) (int, error) { return t.tc.Write(p) }

// CloseWrite sends close_notify, then half-closes the underlying.
func (t *tlsTransport) CloseWrite() error {
	err := t.tc.CloseWrite()
	return errors.Join(err, t.c.CloseWrite())
}

func (t *tlsTransport) Close() error                   { return t.c.Close() }
func (t *tlsTransport) Underlying() *actor.Bufferevent { return t.c.b }

func (t *tlsTransport) Buffered() int { return t.c.buffered() }

func (t *tlsTransport) NotifyProgress(wake func()) { t.c.notifyProgress(wake) }

// Drain hands what the view holds to the underlying and drains it in turn.
func (t *tlsTransport) Drain(ctx context.Context) error { return t.c.drain(ctx) }

// abort ends a failed handshake: the alert crypto/tls wrote goes to the
// underlying, which is drained and closed when the TLS bufferevent owns
// it (briefly: ctx ends when the bufferevent is closed), and the view
// lets go of it.
func (t *tlsTransport) abort(ctx context.Context) {
	t.c.b.Do(func(s *actor.Session) { t.c.takeOutput(s) })
	if t.c.closeB {
		ctx, cancel := clock.WithTimeoutCause(ctx, DefaultLinger, nil)
		t.c.b.Drain(ctx)
		cancel()
	}
	t.c.Close()
}

// readEOF reports whether Read has returned io.EOF from the underlying.
func (c *Conn) readEOF() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sawEOF
}
