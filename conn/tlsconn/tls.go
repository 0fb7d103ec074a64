// Package tlsconn makes socket bufferevents speak TLS through crypto/tls:
// libevent's bufferevent_openssl_socket_new and the calls that go with
// it. A TLS socket is a *conn.Socket whose conn.Layer is a [*TLS]: the
// socket dials (or is given a connection, or accepts one), runs the
// client or the server handshake on a goroutine it owns (after a dial at
// once; on a connection it was given or accepted, as soon as it first
// wants I/O, through whichever methods, the embedded *actor.Bufferevent's
// included), and reports actor.Connected once the handshake completes,
// or actor.Error with the TLS cause. A handshake is bounded by
// [DefaultHandshakeTimeout] unless [TLS.SetHandshakeTimeout] says
// otherwise. [New] makes one; a conn.Listener with
// conn.ListenerConfig{Layer: [Server](cfg)} accepts them; [Of] finds the
// TLS state of a socket. It lives apart from package conn so that plain
// servers do not link crypto/tls (about 2 MiB of examples/echo's resident
// memory at start, docs/benchmarks.md).
//
// Defaults are safe: TLS 1.2 is the minimum and certificates are
// verified unless the configuration says otherwise. A graceful close
// (Drain, or Flush(actor.Write, actor.Finished)) sends close_notify after
// the last byte, which libevent never does (its issue #943). A peer that
// closes without close_notify is an error, since the stream may have
// been cut ([ErrDirtyShutdown]), or EOF with [DirtyShutdown] set; [TLS.Err]
// keeps the TLS error of the last failure.
//
// TLS over any bufferevent (a pair, a filter) is package pipeline's
// TLS filter; this package is TLS right on the connection.
package tlsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/clock"
	"github.com/bevgo/bev/conn"
)

// State is the role and progress of a TLS socket: libevent's
// BUFFEREVENT_SSL_OPEN, _CONNECTING and _ACCEPTING, with their values.
type State int32

// The TLS states.
const (
	// Open: the handshake is done (or the connection was given to New
	// already established); no Connected event is reported for it.
	Open State = 0
	// Connecting: the socket is the client and has not finished the
	// handshake yet.
	Connecting State = 1
	// Accepting: the socket is the server and has not finished the
	// handshake yet.
	Accepting State = 2
)

// String returns "Open", "Connecting", "Accepting", or the number.
func (st State) String() string {
	switch st {
	case Open:
		return "Open"
	case Connecting:
		return "Connecting"
	case Accepting:
		return "Accepting"
	}
	return "State(" + strconv.Itoa(int(st)) + ")"
}

// Flags are the behaviour flags of a TLS socket, with libevent's
// BUFFEREVENT_SSL_* values.
type Flags uint32

// The TLS flags.
const (
	// DirtyShutdown reports a peer that closes the connection without
	// sending close_notify as actor.EOF instead of actor.Error
	// (BUFFEREVENT_SSL_DIRTY_SHUTDOWN). Without it that is Reading|Error
	// with ErrDirtyShutdown, since the stream may have been truncated. A
	// stream cut inside a TLS record is that Error either way.
	DirtyShutdown Flags = 1
)

const allFlags = DirtyShutdown

// Sentinel errors.
var (
	// ErrNotTLS is wrapped by the errors of SetFlags and ClearFlags
	// called on the TLS state of a plain socket (a nil *TLS).
	ErrNotTLS = errors.New("tlsconn: not a TLS socket")

	// ErrDirtyShutdown is the cause of the Reading|Error event a TLS
	// socket reports when its peer closed the connection without sending
	// close_notify, unless DirtyShutdown is set and the stream ended at a
	// record's boundary. It wraps io.ErrUnexpectedEOF too.
	ErrDirtyShutdown = errors.New("tlsconn: TLS peer closed without close_notify")
)

// TLS is the TLS layer of one socket and its state: the conn.Layer that
// runs the handshake, and what libevent's bufferevent_ssl_* calls report.
// The handshake runs on the socket's connect goroutine and the
// transport's Read on its reader loop or actor, so everything here is
// atomic or locked; a TLS is safe for concurrent use. Its methods are
// safe on a nil *TLS, the state of a plain socket (Of returns nil for
// one): Open, no flags, no error.
type TLS struct {
	cfg   *tls.Config
	role  State // Connecting or Accepting: which side we are
	state atomic.Int32
	flags atomic.Uint32
	conn  atomic.Pointer[tls.Conn]
	// hsTimeout is the handshake timeout plus one; 0 until it is set.
	hsTimeout atomic.Int64

	mu  sync.Mutex // guards following
	err error
}

// New returns a TLS socket bufferevent over c (libevent's
// bufferevent_openssl_socket_new), built on crypto/tls, owned by base
// (which may be nil).
//
// state says what c is. With Connecting or Accepting, c is a plain
// connection on which the socket runs the client or the server handshake,
// on a goroutine it owns (Close cancels it), and reports actor.Connected
// once it completes, or actor.Error with the TLS cause, and no data
// callbacks, if it fails (after the handshake timeout, an error wrapping
// actor.ErrTimeout). Writes made before then are sent after it. The
// handshake starts when the socket first wants I/O: reading enabled
// (Enable, In), output written, or a Flush with Finished or a Drain,
// through the Socket or its embedded *actor.Bufferevent alike
// (actor.Handshaker); a socket nobody uses does not answer its peer. c is
// the socket's connection from the start, so Conn reports its addresses
// before the handshake (do not read or write it). c may be nil: connect later with ConnectAddr, ConnectHostname or
// ConnectWith, which handshake in the role state names. With Open, c must
// be a *tls.Conn; its handshake is done (or done by the first read or
// write) and no Connected is reported. Since crypto/tls hides whether
// close_notify came, such a socket reports every clean end of stream as
// EOF.
//
// cfg is cloned. Defaults are safe: a zero MinVersion means TLS 1.2, and
// certificates are verified unless cfg says otherwise. A client's
// ConnectAddr and ConnectHostname fill in the server name from the
// address when cfg has none; with a connection given here, cfg must name
// the server. A server's cfg needs a certificate. A nil cfg is a zero
// configuration.
//
// A graceful close (Drain, or Flush(actor.Write, actor.Finished)) sends
// close_notify after the last byte. Close (libevent's free: output not
// yet written is dropped) sends it too, after the write in flight if
// there is one: that write is given 1 s to finish, and one cut short ends
// the stream without close_notify, since bytes were lost. crypto/tls
// bounds the close_notify's own write by 5 s when the peer does not read.
// A peer that closes without
// close_notify is reported as Reading|Error with ErrDirtyShutdown, or as
// Reading|EOF with DirtyShutdown set.
//
// New fails with an error wrapping actor.ErrInvalid for an unknown state
// or an Open c that is not a *tls.Conn, and otherwise as conn.New; c is
// not closed then.
func New(base *actor.Base, c net.Conn, cfg *tls.Config, state State, opts actor.Option) (*conn.Socket, error) {
	switch state {
	case Open:
		tc, ok := c.(*tls.Conn)
		if !ok {
			return nil, fmt.Errorf("tlsconn: new socket: %w: state Open needs a *tls.Conn, not %T", actor.ErrInvalid, c)
		}
		t := newTLS(cloneConfig(cfg), Connecting) // the role of a later ConnectAddr
		t.state.Store(int32(Open))
		t.conn.Store(tc)
		s, err := conn.NewLayeredOpen(base, &transport{Conn: tc, info: t}, t, opts)
		if err != nil {
			return nil, fmt.Errorf("tlsconn: %w", err)
		}
		return s, nil
	case Connecting, Accepting:
		s, err := conn.NewLayered(base, c, newTLS(cloneConfig(cfg), state), opts)
		if err != nil {
			return nil, fmt.Errorf("tlsconn: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("tlsconn: new socket: %w: state %v", actor.ErrInvalid, state)
}

// Server returns the layer maker of a conn.Listener whose sockets are TLS
// servers (New in state Accepting over each accepted connection):
//
//	conn.ListenerConfig{Layer: tlsconn.Server(cfg)}
//
// cfg is cloned once, here, and shared by every socket accepted; it needs
// a certificate. Server itself cannot fail: with a cfg that has none (or
// nil), every handshake fails, and each accepted socket reports one
// actor.Error with the TLS cause. Defaults are as New's.
func Server(cfg *tls.Config) func() conn.Layer {
	cfg = cloneConfig(cfg)
	return func() conn.Layer { return newTLS(cfg, Accepting) }
}

// Of returns the TLS layer of s, or nil when s is not a TLS socket (or is
// nil). Its methods work on the nil it may return.
func Of(s *conn.Socket) *TLS {
	if s == nil {
		return nil
	}
	t, _ := s.Layer().(*TLS)
	return t
}

// cloneConfig returns a copy of cfg (a zero one for nil) with the safe
// defaults filled in.
func cloneConfig(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

func newTLS(cfg *tls.Config, state State) *TLS {
	t := &TLS{cfg: cfg, role: state}
	t.state.Store(int32(state))
	return t
}

// State returns where the TLS socket stands: Connecting or Accepting
// until its handshake completes, Open after. It returns Open for a plain
// socket (a nil t).
func (t *TLS) State() State {
	if t == nil {
		return Open
	}
	return State(t.state.Load())
}

// Flags returns the TLS flags (libevent's bufferevent_ssl_get_flags); 0
// for a plain socket.
func (t *TLS) Flags() Flags {
	if t == nil {
		return 0
	}
	return Flags(t.flags.Load())
}

// SetFlags sets the flags in f and returns the flags as they were
// (libevent's bufferevent_ssl_set_flags). It takes effect for the next
// read. It fails with an error wrapping ErrNotTLS for a plain socket (a
// nil t) and actor.ErrInvalid for unknown flags.
func (t *TLS) SetFlags(f Flags) (Flags, error) {
	if err := t.checkFlags(f); err != nil {
		return 0, err
	}
	return Flags(t.flags.Or(uint32(f))), nil
}

// ClearFlags clears the flags in f and returns the flags as they were
// (libevent's bufferevent_ssl_clear_flags). It fails as SetFlags does.
func (t *TLS) ClearFlags(f Flags) (Flags, error) {
	if err := t.checkFlags(f); err != nil {
		return 0, err
	}
	return Flags(t.flags.And(^uint32(f))), nil
}

func (t *TLS) checkFlags(f Flags) error {
	if t == nil {
		return fmt.Errorf("%w: flags", ErrNotTLS)
	}
	if f&^allFlags != 0 {
		return fmt.Errorf("tlsconn: flags %#x: %w", uint32(f), actor.ErrInvalid)
	}
	return nil
}

// Err returns the TLS error of the last failure (libevent's
// bufferevent_get_openssl_error): a failed handshake, an alert or a
// record error from the peer, or ErrDirtyShutdown; nil when there was
// none or for a plain socket. Plain I/O errors of the connection under
// TLS (a reset, say) are not TLS errors; they come with the Error event.
// The error stays until the next failure replaces it.
func (t *TLS) Err() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Conn returns the TLS connection once the handshake has completed
// (libevent's bufferevent_openssl_get_ssl), for its ConnectionState; nil
// for a plain socket and before the handshake. Reading or writing it
// directly corrupts the stream.
func (t *TLS) Conn() *tls.Conn {
	if t == nil {
		return nil
	}
	return t.conn.Load()
}

func (t *TLS) setErr(err error) {
	t.mu.Lock()
	t.err = err
	t.mu.Unlock()
}

// Wrap returns the transport of a TLS socket over c in the socket's role
// (conn.Layer's method, called by the socket): a *tls.Conn whose
// handshake the socket runs through the transport's Handshake (an
// actor.Handshaker) before it reads or writes it. A client's serverName
// is the server name to verify unless the configuration names one. It
// does not fail.
func (t *TLS) Wrap(c net.Conn, serverName string) (actor.Transport, error) {
	raw := &eofConn{Conn: c}
	var tc *tls.Conn
	if t.role == Accepting {
		tc = tls.Server(raw, t.cfg)
	} else {
		cfg := t.cfg
		if cfg.ServerName == "" && serverName != "" {
			cfg = cfg.Clone()
			cfg.ServerName = serverName
		}
		tc = tls.Client(raw, cfg)
	}
	return &handshakeTransport{transport{Conn: tc, raw: raw, info: t}}, nil
}

// DefaultHandshakeTimeout bounds a TLS socket's handshake unless
// SetHandshakeTimeout says otherwise: as long as net/http's servers
// commonly allow a client for its headers, so that a peer that stops
// mid-handshake does not hold the socket.
const DefaultHandshakeTimeout = 10 * time.Second

// SetHandshakeTimeout bounds the handshakes the socket runs from now on
// (those already running keep their bound): d from the handshake's
// start, measured on the socket's Base's clock (actor.Base.Clock) as its
// read and write timeouts are, 0 for no bound, DefaultHandshakeTimeout until it is called. A
// handshake that takes longer fails, and the socket reports actor.Error
// with an error wrapping actor.ErrTimeout (which matches
// os.ErrDeadlineExceeded). Set it before the handshake starts: for an
// accepted socket, in the accept callback, before enabling it or writing
// to it. It fails with an error wrapping ErrNotTLS for a plain socket (a
// nil t) and actor.ErrInvalid for a negative d.
func (t *TLS) SetHandshakeTimeout(d time.Duration) error {
	if t == nil {
		return fmt.Errorf("tlsconn: handshake timeout: %w", ErrNotTLS)
	}
	if d < 0 {
		return fmt.Errorf("tlsconn: handshake timeout %v: %w", d, actor.ErrInvalid)
	}
	t.hsTimeout.Store(int64(d) + 1) // 0 stays "never set"
	return nil
}

// HandshakeTimeout returns the bound of the socket's handshakes (0: none);
// 0 for a plain socket.
func (t *TLS) HandshakeTimeout() time.Duration {
	if t == nil {
		return 0
	}
	v := t.hsTimeout.Load()
	if v == 0 {
		return DefaultHandshakeTimeout
	}
	return time.Duration(v - 1)
}

// handshakeTransport is the transport of a TLS socket whose handshake has
// not run: the socket runs it (actor.Handshaker) before reading or
// writing.
type handshakeTransport struct{ transport }

// Handshake runs the TLS handshake, within the socket's handshake
// timeout. On failure it closes the connection and returns the cause,
// kept for Err when it is a TLS error.
func (h *handshakeTransport) Handshake(ctx context.Context) error {
	t := h.info
	var timedOut error
	if d := t.HandshakeTimeout(); d > 0 {
		timedOut = fmt.Errorf("no handshake within %v: %w", d, actor.ErrTimeout)
		var cancel context.CancelFunc
		ctx, cancel = clock.WithTimeoutCause(ctx, d, timedOut)
		defer cancel()
	}
	if err := h.Conn.HandshakeContext(ctx); err != nil {
		h.raw.Close()
		if timedOut != nil && context.Cause(ctx) == timedOut {
			err = timedOut
		} else if isTLSError(err) {
			t.setErr(err)
		}
		return fmt.Errorf("tlsconn: handshake: %w", err)
	}
	t.conn.Store(h.Conn)
	t.state.Store(int32(Open))
	return nil
}

// isTLSError reports whether err comes from the TLS layer rather than
// from the connection under it or a cancelled context.
func isTLSError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var (
		ae tls.AlertError
		re tls.RecordHeaderError
		ve *tls.CertificateVerificationError
		ce *tls.ECHRejectionError
		oe *net.OpError
	)
	switch {
	case errors.As(err, &ae), errors.As(err, &re), errors.As(err, &ve), errors.As(err, &ce):
		return true
	case errors.As(err, &oe):
		// crypto/tls reports a fatal alert it sent or received as an
		// *net.OpError whose Err is the alert; a syscall error there is
		// the connection's.
		return errors.As(oe.Err, &ae) || oe.Op == "remote error" || oe.Op == "local error"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return false
	}
	// The rest of crypto/tls's failures are plain errors ("tls: ...").
	return true
}

// eofConn is the connection under a tls.Conn. It notes whether the peer
// ended the raw stream: crypto/tls reports an EOF at a record boundary as
// a clean io.EOF whether or not close_notify came first, and a raw EOF is
// only ever read when it did not.
type eofConn struct {
	net.Conn
	sawEOF atomic.Bool
}

// NetConn returns the connection under c, as tls.Conn's NetConn does, so
// that code unwrapping a socket's layers (to reset its TCP connection,
// say) gets through this one too.
func (c *eofConn) NetConn() net.Conn { return c.Conn }

func (c *eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF {
		c.sawEOF.Store(true)
	}
	return n, err
}

// transport is a TLS socket's transport: the *tls.Conn, with its reads
// classified (clean or dirty shutdown, TLS errors kept).
type transport struct {
	*tls.Conn
	raw  *eofConn // nil for a connection given in TLSOpen state
	info *TLS
	// wmu is held by Write, so that Close can wait for the write in
	// flight: crypto/tls's Close sends no close_notify while a Write is
	// under way, and the writer loop may still be inside the Write of
	// bytes the peer already has.
	wmu    sync.Mutex
	wfault bool // a Write failed (guarded by wmu)
}

// closeWait bounds how long Close waits for a Write in flight before it
// cuts it short (and then sends no close_notify, since the stream was
// cut).
const closeWait = time.Second

func (t *transport) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	n, err := t.Conn.Write(p)
	if err != nil {
		t.wfault = true
	}
	return n, err
}

// Close sends close_notify after the last write and closes the
// connection. A Write still in flight is given closeWait to finish first
// (a write deadline then cuts it); crypto/tls bounds the close_notify by
// 5 s when the peer does not read. After a failed Write the stream is cut
// already: Close then closes the connection without close_notify. A
// close_notify that cannot be written because the peer has gone is no
// failure of the close.
func (t *transport) Close() error {
	if !t.wmu.TryLock() {
		t.Conn.SetWriteDeadline(time.Now().Add(closeWait))
		t.wmu.Lock()
	}
	var err error
	if t.wfault {
		err = t.Conn.NetConn().Close()
	} else {
		err = t.Conn.Close()
	}
	t.wmu.Unlock()
	if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op != "close" {
		return nil
	}
	return err
}

func (t *transport) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	switch {
	case err == nil:
	case err == io.EOF && (t.raw == nil || !t.raw.sawEOF.Load()):
		// close_notify came first: a clean end.
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		// The peer closed without close_notify, at a record boundary or
		// inside a record: the stream may have been cut short. A cut
		// inside a record was, so DirtyShutdown forgives only the first
		// (as package pipeline's TLS).
		if err == io.EOF && Flags(t.info.flags.Load())&DirtyShutdown != 0 {
			return n, io.EOF
		}
		err = fmt.Errorf("%w (%w)", ErrDirtyShutdown, io.ErrUnexpectedEOF)
		t.info.setErr(err)
	case isTLSError(err):
		t.info.setErr(err)
	}
	return n, err
}
