package conn

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

	"github.com/bevgo/bev/actor"
)

// TLSState is the role and progress of a TLS socket: libevent's
// BUFFEREVENT_SSL_OPEN, _CONNECTING and _ACCEPTING, with their values.
type TLSState int32

// The TLS states.
const (
	// TLSOpen: the handshake is done (or the connection was given to
	// NewTLS already established); no Connected event is reported for it.
	TLSOpen TLSState = 0
	// TLSConnecting: the socket is the client and has not finished the
	// handshake yet.
	TLSConnecting TLSState = 1
	// TLSAccepting: the socket is the server and has not finished the
	// handshake yet.
	TLSAccepting TLSState = 2
)

// String returns "Open", "Connecting", "Accepting", or the number.
func (st TLSState) String() string {
	switch st {
	case TLSOpen:
		return "Open"
	case TLSConnecting:
		return "Connecting"
	case TLSAccepting:
		return "Accepting"
	}
	return "TLSState(" + strconv.Itoa(int(st)) + ")"
}

// TLSFlags are the behaviour flags of a TLS socket, with libevent's
// BUFFEREVENT_SSL_* values.
type TLSFlags uint32

// The TLS flags.
const (
	// TLSDirtyShutdown reports a peer that closes the connection without
	// sending close_notify as actor.EOF instead of actor.Error
	// (BUFFEREVENT_SSL_DIRTY_SHUTDOWN). Without it that is Reading|Error
	// with ErrDirtyShutdown, since the stream may have been truncated.
	TLSDirtyShutdown TLSFlags = 1
)

const allTLSFlags = TLSDirtyShutdown

// tlsInfo is the TLS side of a Socket. The handshake runs on the
// bufferevent's connect goroutine and the transport's Read on its reader
// loop, so everything here is atomic or locked.
type tlsInfo struct {
	cfg   *tls.Config
	role  TLSState // TLSConnecting or TLSAccepting: which side we are
	state atomic.Int32
	flags atomic.Uint32
	conn  atomic.Pointer[tls.Conn]

	start     chan struct{} // closed to begin the handshake over NewTLS's c
	startOnce sync.Once

	mu  sync.Mutex // guards following
	err error
}

// NewTLS returns a TLS socket bufferevent over c (libevent's
// bufferevent_openssl_socket_new), built on crypto/tls, owned by base
// (which may be nil).
//
// state says what c is. With TLSConnecting or TLSAccepting, c is a plain
// connection on which the socket runs the client or the server handshake,
// on a goroutine it owns (Close cancels it), and reports actor.Connected
// once it completes, or actor.Error with the TLS cause, and no data
// callbacks, if it fails. Writes made before then are sent after it. So
// that no outcome is reported before there is a callback or channel to
// hear it, the handshake starts at the first call of the Socket's
// SetCallbacks, Enable, In, Events, Write or Drain (the same methods
// reached through the embedded *actor.Bufferevent do not start it).
// c may be nil: connect
// later with ConnectAddr, ConnectHostname or ConnectWith, which handshake
// in the role state names. With TLSOpen, c must be a *tls.Conn; its
// handshake is done (or done by the first read or write) and no Connected
// is reported. Since crypto/tls hides whether close_notify came, such a
// socket reports every clean end of stream as EOF.
//
// cfg is cloned. Defaults are safe: a zero MinVersion means TLS 1.2, and
// certificates are verified unless cfg says otherwise. A client's
// ConnectAddr and ConnectHostname fill in the server name from the
// address when cfg has none; with a connection given here, cfg must name
// the server. A server's cfg needs a certificate. A nil cfg is a zero
// configuration.
//
// A graceful close (Drain, or Flush(actor.Write, actor.Finished)) sends
// close_notify after the last byte, which libevent never does (its issue
// #943). Close sends it too, as crypto/tls's Close does, unless a write
// is in flight; crypto/tls bounds that write by 5 s when the peer does
// not read. A peer that closes without close_notify is reported as
// Reading|Error with ErrDirtyShutdown, or as Reading|EOF with
// TLSDirtyShutdown set.
//
// NewTLS fails with an error wrapping actor.ErrInvalid for an unknown
// state or a TLSOpen c that is not a *tls.Conn, and otherwise as New;
// c is not closed then.
func NewTLS(base *actor.Base, c net.Conn, cfg *tls.Config, state TLSState, opts actor.Option) (*Socket, error) {
	ti := &tlsInfo{role: state}
	if cfg == nil {
		ti.cfg = &tls.Config{}
	} else {
		ti.cfg = cfg.Clone()
	}
	if ti.cfg.MinVersion == 0 {
		ti.cfg.MinVersion = tls.VersionTLS12
	}
	ti.state.Store(int32(state))
	var t actor.Transport
	switch state {
	case TLSOpen:
		if c == nil {
			return nil, fmt.Errorf("conn: new TLS socket: %w: state Open needs a *tls.Conn", actor.ErrInvalid)
		}
		tc, ok := c.(*tls.Conn)
		if !ok {
			return nil, fmt.Errorf("conn: new TLS socket: %w: state Open needs a *tls.Conn, not %T", actor.ErrInvalid, c)
		}
		ti.role = TLSConnecting // for a later ConnectAddr
		ti.conn.Store(tc)
		t = &tlsTransport{Conn: tc, info: ti}
	case TLSConnecting, TLSAccepting:
	default:
		return nil, fmt.Errorf("conn: new TLS socket: %w: state %v", actor.ErrInvalid, state)
	}
	b, err := actor.New(base, t, opts)
	if err != nil {
		return nil, fmt.Errorf("conn: new TLS socket: %w", err)
	}
	s := &Socket{Bufferevent: b, tls: ti}
	if state != TLSOpen && c != nil {
		// The handshake waits until the caller has said how to hear of
		// its outcome (see SetCallbacks): started at once, it could
		// report Connected or Error before the callbacks were set.
		// Waiting inside the dial keeps c owned by the bufferevent:
		// Close cancels the wait and c is closed.
		ti.start = make(chan struct{})
		err := s.connect(context.Background(), "", func(ctx context.Context) (net.Conn, error) {
			select {
			case <-ti.start:
				return c, nil
			case <-ctx.Done():
				c.Close()
				return nil, ctx.Err()
			}
		})
		if err != nil {
			b.Close()
			return nil, err
		}
	}
	return s, nil
}

// SetCallbacks is actor.Bufferevent.SetCallbacks. On a TLS socket made
// over a connection the first call of SetCallbacks, Enable, In, Events,
// Write or Drain also starts the handshake.
func (s *Socket) SetCallbacks(cbs actor.Callbacks) {
	s.Bufferevent.SetCallbacks(cbs)
	s.startTLS()
}

// Enable is actor.Bufferevent.Enable, and may start a TLS handshake (see
// SetCallbacks).
func (s *Socket) Enable(d actor.Dir) error {
	s.startTLS()
	return s.Bufferevent.Enable(d)
}

// In is actor.Bufferevent.In, and may start a TLS handshake (see
// SetCallbacks).
func (s *Socket) In() <-chan []byte {
	defer s.startTLS()
	return s.Bufferevent.In()
}

// Events is actor.Bufferevent.Events, and may start a TLS handshake (see
// SetCallbacks).
func (s *Socket) Events() <-chan actor.EventInfo {
	defer s.startTLS()
	return s.Bufferevent.Events()
}

// Write is actor.Bufferevent.Write, and may start a TLS handshake (see
// SetCallbacks).
func (s *Socket) Write(p []byte) error {
	defer s.startTLS()
	return s.Bufferevent.Write(p)
}

// Drain is actor.Bufferevent.Drain, and may start a TLS handshake (see
// SetCallbacks).
func (s *Socket) Drain(ctx context.Context) error {
	s.startTLS()
	return s.Bufferevent.Drain(ctx)
}

func (s *Socket) startTLS() {
	if s.tls != nil && s.tls.start != nil {
		s.tls.startOnce.Do(func() { close(s.tls.start) })
	}
}

// TLSState returns where the TLS socket stands: TLSConnecting or
// TLSAccepting until its handshake completes, TLSOpen after. It returns
// TLSOpen on a plain socket.
func (s *Socket) TLSState() TLSState {
	if s.tls == nil {
		return TLSOpen
	}
	return TLSState(s.tls.state.Load())
}

// TLSFlags returns the TLS flags (libevent's bufferevent_ssl_get_flags);
// 0 on a plain socket.
func (s *Socket) TLSFlags() TLSFlags {
	if s.tls == nil {
		return 0
	}
	return TLSFlags(s.tls.flags.Load())
}

// SetTLSFlags sets the flags in f and returns the flags as they were
// (libevent's bufferevent_ssl_set_flags). It takes effect for the next
// read. It fails with an error wrapping ErrNotTLS on a plain socket and
// actor.ErrInvalid for unknown flags.
func (s *Socket) SetTLSFlags(f TLSFlags) (TLSFlags, error) {
	if err := s.checkFlags(f); err != nil {
		return 0, err
	}
	return TLSFlags(s.tls.flags.Or(uint32(f))), nil
}

// ClearTLSFlags clears the flags in f and returns the flags as they were
// (libevent's bufferevent_ssl_clear_flags). It fails as SetTLSFlags does.
func (s *Socket) ClearTLSFlags(f TLSFlags) (TLSFlags, error) {
	if err := s.checkFlags(f); err != nil {
		return 0, err
	}
	return TLSFlags(s.tls.flags.And(^uint32(f))), nil
}

func (s *Socket) checkFlags(f TLSFlags) error {
	if s.tls == nil {
		return fmt.Errorf("conn: TLS flags: %w", ErrNotTLS)
	}
	if f&^allTLSFlags != 0 {
		return fmt.Errorf("conn: TLS flags %#x: %w", uint32(f), actor.ErrInvalid)
	}
	return nil
}

// TLSError returns the TLS error of the last failure (libevent's
// bufferevent_get_openssl_error): a failed handshake, an alert or a
// record error from the peer, or ErrDirtyShutdown; nil when there was
// none or on a plain socket. Plain I/O errors of the connection under TLS
// (a reset, say) are not TLS errors; they come with the Error event. The
// error stays until the next failure replaces it.
func (s *Socket) TLSError() error {
	if s.tls == nil {
		return nil
	}
	s.tls.mu.Lock()
	defer s.tls.mu.Unlock()
	return s.tls.err
}

func (ti *tlsInfo) setErr(err error) {
	ti.mu.Lock()
	ti.err = err
	ti.mu.Unlock()
}

// handshake runs the TLS handshake on c in the socket's role and returns
// the transport; on failure it closes c.
func (ti *tlsInfo) handshake(ctx context.Context, c net.Conn, serverName string) (actor.Transport, error) {
	raw := &eofConn{Conn: c}
	var tc *tls.Conn
	if ti.role == TLSAccepting {
		tc = tls.Server(raw, ti.cfg)
	} else {
		cfg := ti.cfg
		if cfg.ServerName == "" && serverName != "" {
			cfg = cfg.Clone()
			cfg.ServerName = serverName
		}
		tc = tls.Client(raw, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		if isTLSError(err) {
			ti.setErr(err)
		}
		return nil, fmt.Errorf("conn: TLS handshake: %w", err)
	}
	ti.conn.Store(tc)
	ti.state.Store(int32(TLSOpen))
	return &tlsTransport{Conn: tc, raw: raw, info: ti}, nil
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

func (c *eofConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF {
		c.sawEOF.Store(true)
	}
	return n, err
}

// tlsTransport is a TLS socket's transport: the *tls.Conn, with its reads
// classified (clean or dirty shutdown, TLS errors kept).
type tlsTransport struct {
	*tls.Conn
	raw  *eofConn // nil for a connection given in TLSOpen state
	info *tlsInfo
}

// Close sends close_notify when it can (crypto/tls's Close skips it while
// a write is in flight) and closes the connection. A close_notify that
// cannot be written because the peer has gone is no failure of the close.
func (t *tlsTransport) Close() error {
	err := t.Conn.Close()
	if oe := (*net.OpError)(nil); errors.As(err, &oe) && oe.Op != "close" {
		return nil
	}
	return err
}

func (t *tlsTransport) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	switch {
	case err == nil:
	case err == io.EOF && (t.raw == nil || !t.raw.sawEOF.Load()):
		// close_notify came first: a clean end.
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		// The peer closed without close_notify, at a record boundary or
		// inside a record: the stream may have been cut short.
		if TLSFlags(t.info.flags.Load())&TLSDirtyShutdown != 0 {
			return n, io.EOF
		}
		err = fmt.Errorf("%w (%w)", ErrDirtyShutdown, io.ErrUnexpectedEOF)
		t.info.setErr(err)
	case isTLSError(err):
		t.info.setErr(err)
	}
	return n, err
}
