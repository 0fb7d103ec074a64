package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/bevgo/bev/actor"
)

// Accept-error back-off, as net/http's Server: 5 ms, doubling, at most 1 s.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// ListenerConfig configures a Listener. The zero value means plain
// sockets with no options.
type ListenerConfig struct {
	// Options are the options of every accepted socket; add
	// actor.CloseOnFree to close the connection with the socket.
	Options actor.Option
	// Layer, when set, gives each accepted socket a layer of its own
	// (NewLayered over the accepted connection); tlsconn.Server(cfg)
	// makes every socket a TLS server socket. The accept callback gets
	// the socket before the handshake, and it reports actor.Connected
	// when the handshake completes. A nil Layer() drops the connection.
	Layer func() Layer
	// Stages, when set (and Layer is not), gives each accepted socket an
	// input and an output stage of its own (actor.NewStaged), as a filter
	// has, with no second bufferevent in between.
	Stages func() (in, out actor.Stage)
	// OnError, when set, hears what the listener survives: an accept
	// error it retries after a back-off (running out of descriptors,
	// say: the error wraps the errno, such as syscall.EMFILE), and a
	// panic in the accept callback, reported as an error wrapping
	// ErrAcceptPanic and the *actor.PanicError (so errors.Is finds
	// actor.ErrPanic too) after the socket it was given is closed. It
	// runs on the listener's goroutine, which accepts nothing until it
	// returns: it must not block, and rate-limiting what it logs is its
	// own business (a retried error repeats up to once per back-off,
	// from 5 ms to 1 s). A panic in OnError itself is dropped. The
	// error that ends the accept loop is not passed here: Err and Done
	// report it.
	OnError func(error)
	// KeepAlive, when its Enable is set, turns TCP keep-alive on for
	// every connection Listen accepts, with its Idle, Interval and Count
	// (zero ones take Go's defaults: 15 s, 15 s and 9 probes). By default
	// it is off, as in libevent, though Go's net.Listen turns it on (see
	// keepalive.go's note: it costs four system calls per connection). It
	// applies to Listen only: a Listener made with NewListener keeps the
	// setting of the net.Listener it was given.
	KeepAlive net.KeepAliveConfig
}

// Listener accepts connections on a net.Listener and hands each over as a
// Socket made with its Base (libevent's evconnlistener): to the accept
// callback, or on the Accepted channel when there is none. Temporary
// accept errors (too many open files, for instance) are retried after a
// back-off and reported to ListenerConfig.OnError; any other error ends
// the accept loop, and Err says which. A panic in the accept callback
// closes the socket it was given and is reported to OnError; accepting
// goes on.
//
// A Listener made with a Base registers itself with it, so the Base's
// Close closes the listener, and, since the sockets are made with the
// Base, every socket accepted. Without a Base the caller closes both.
//
// A Listener is safe for concurrent use. One not made by Listen or
// NewListener (a zero value, a nil pointer) fails every method with an
// error wrapping actor.ErrInvalid or gives its zero result (its Done is
// closed); none panics or blocks.
type Listener struct {
	base   *actor.Base
	ln     net.Listener
	cfg    ListenerConfig
	accept func(*Socket)

	accepted chan *Socket // unbuffered; nil with an accept callback
	quit     chan struct{}
	done     chan struct{} // closed when the accept loop has returned

	closeOnce sync.Once
	closeErr  error

	errMu sync.Mutex // guards following
	err   error
}

// Listen listens on network and address (as net.Listen, but with TCP
// keep-alive off unless cfg.KeepAlive turns it on) and returns a Listener
// over it; see NewListener. It fails with the error of net.Listen, or as
// NewListener does.
func Listen(base *actor.Base, network, address string, cfg ListenerConfig, accept func(*Socket)) (*Listener, error) {
	ln, err := listenConfig(cfg.KeepAlive).Listen(context.Background(), network, address)
	if err != nil {
		return nil, fmt.Errorf("conn: listen: %w", err)
	}
	l, err := NewListener(base, ln, cfg, accept)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

// NewListener starts accepting on ln and returns the Listener, which owns
// ln from then on: its Close closes ln. Each connection becomes a Socket
// made with base and cfg, handed to accept on the listener's goroutine
// (accept must not block for long, nor call the listener's Close), or,
// when accept is nil, sent on the Accepted channel. The socket belongs to
// whoever receives it; with a Base, that Base's Close also closes it.
// NewListener fails with an error wrapping actor.ErrInvalid for a nil ln
// and actor.ErrClosed when base is closed; ln is not closed then.
func NewListener(base *actor.Base, ln net.Listener, cfg ListenerConfig, accept func(*Socket)) (*Listener, error) {
	if ln == nil {
		return nil, fmt.Errorf("conn: new listener: %w: nil net.Listener", actor.ErrInvalid)
	}
	l := &Listener{
		base:   base,
		ln:     ln,
		cfg:    cfg,
		accept: accept,
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if accept == nil {
		l.accepted = make(chan *Socket)
	}
	if err := base.Register(l); err != nil {
		return nil, fmt.Errorf("conn: new listener: %w", err)
	}
	go l.loop()
	return l, nil
}

// Addr returns the address the listener accepts on.
func (l *Listener) Addr() net.Addr {
	if l.zero() {
		return nil
	}
	return l.ln.Addr()
}

// errZeroListener is what the methods of a Listener not made by Listen or
// NewListener (a zero value, a nil pointer) fail with.
var errZeroListener = fmt.Errorf("%w: listener not made by Listen or NewListener", actor.ErrInvalid)

// closedDone is what Done returns for a Listener not made by Listen or
// NewListener: closed, so that a wait on it ends.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// zero reports whether l was not made by Listen or NewListener.
func (l *Listener) zero() bool { return l == nil || l.done == nil }

// Accepted returns the channel accepted sockets are sent on when the
// Listener has no accept callback, or nil when it has one. The channel is
// closed when the accept loop ends; a socket accepted but not received by
// then is closed. Sends block, so a receiver that stops receiving stops
// accepting: connections then wait in the kernel's backlog.
func (l *Listener) Accepted() <-chan *Socket {
	if l.zero() {
		return nil
	}
	return l.accepted
}

// Accept waits for the next accepted socket on the Accepted channel. It
// fails with an error wrapping ErrListenerClosed once the accept loop has
// ended (Err says why), with one wrapping ctx's cause when ctx ends first,
// and with one wrapping actor.ErrInvalid when the Listener has an accept
// callback.
func (l *Listener) Accept(ctx context.Context) (*Socket, error) {
	if l.zero() {
		return nil, fmt.Errorf("conn: accept: %w", errZeroListener)
	}
	if l.accepted == nil {
		return nil, fmt.Errorf("conn: accept: %w: the listener has an accept callback", actor.ErrInvalid)
	}
	select {
	case s, ok := <-l.accepted:
		if !ok {
			return nil, fmt.Errorf("%w: accept", ErrListenerClosed)
		}
		return s, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("conn: accept: %w", context.Cause(ctx))
	}
}

// Done returns a channel closed when the accept loop has ended, after
// Close or a permanent accept error.
func (l *Listener) Done() <-chan struct{} {
	if l.zero() {
		return closedDone
	}
	return l.done
}

// Err returns the accept error that ended the loop, or nil while it runs
// and after Close.
func (l *Listener) Err() error {
	if l.zero() {
		return nil
	}
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.err
}

// Close stops accepting: it closes the net.Listener and waits for the
// accept loop to return. Sockets already handed over stay open. It
// returns the error of closing the net.Listener (nil if the loop had
// already closed it), the same to every caller. It must not be called
// from the accept callback.
func (l *Listener) Close() error {
	if l.zero() {
		return fmt.Errorf("conn: close listener: %w", errZeroListener)
	}
	l.closeOnce.Do(func() {
		close(l.quit)
		if err := l.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			l.closeErr = fmt.Errorf("conn: close listener: %w", err)
		}
		<-l.done
		l.base.Unregister(l)
	})
	return l.closeErr
}

func (l *Listener) loop() {
	defer close(l.done)
	if l.accepted != nil {
		defer close(l.accepted)
	}
	var delay time.Duration
	var backoff *time.Timer
	defer func() {
		if backoff != nil {
			backoff.Stop()
		}
	}()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.stopping() {
				return
			}
			if !temporary(err) {
				l.errMu.Lock()
				l.err = fmt.Errorf("conn: accept: %w", err)
				l.errMu.Unlock()
				l.ln.Close()
				return
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			l.report(fmt.Errorf("conn: accept (retrying in %v): %w", delay, err))
			if backoff == nil {
				backoff = time.NewTimer(delay)
			} else {
				backoff.Reset(delay)
			}
			select {
			case <-backoff.C:
				continue
			case <-l.quit:
				return
			}
		}
		delay = 0
		s, err := l.newSocketSafe(c)
		if errors.Is(err, actor.ErrPanic) {
			c.Close()
			l.report(fmt.Errorf("%w: %w", ErrAcceptPanic, err))
			continue
		}
		if err != nil {
			// The Base is closing (it will close us too), or the
			// configuration is bad: either way this connection is lost.
			c.Close()
			continue
		}
		if l.accept != nil {
			l.callAccept(s)
			continue
		}
		select {
		case l.accepted <- s:
		case <-l.quit:
			s.Close()
			return
		}
	}
}

// callAccept runs the accept callback. A panic there closes the socket
// it was given and is reported to OnError; the listener goes on.
func (l *Listener) callAccept(s *Socket) {
	defer func() {
		if v := recover(); v != nil {
			pe := &actor.PanicError{Value: v, Stack: debug.Stack()}
			s.Close()
			l.report(fmt.Errorf("%w: %w", ErrAcceptPanic, pe))
		}
	}()
	l.accept(s)
}

// report passes err to OnError, if any; a panic there is dropped, so
// that a faulty error handler cannot stop the listener.
func (l *Listener) report(err error) {
	if l.cfg.OnError == nil {
		return
	}
	defer func() { recover() }()
	l.cfg.OnError(err)
}

// newSocketSafe is newSocket with a panic in the user's code it runs
// (ListenerConfig.Layer or Stages, the layer's Wrap) returned as a
// *actor.PanicError, so that it is contained as the accept callback's is.
func (l *Listener) newSocketSafe(c net.Conn) (s *Socket, err error) {
	defer func() {
		if v := recover(); v != nil {
			s, err = nil, &actor.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return l.newSocket(c)
}

func (l *Listener) newSocket(c net.Conn) (*Socket, error) {
	if l.cfg.Layer != nil {
		return NewLayered(l.base, c, l.cfg.Layer(), l.cfg.Options)
	}
	if l.cfg.Stages != nil {
		in, out := l.cfg.Stages()
		b, err := actor.NewStaged(l.base, c, l.cfg.Options, in, out)
		if err != nil {
			return nil, fmt.Errorf("conn: new socket: %w", err)
		}
		return &Socket{Bufferevent: b}, nil
	}
	return New(l.base, c, l.cfg.Options)
}

func (l *Listener) stopping() bool {
	select {
	case <-l.quit:
		return true
	default:
		return false
	}
}

// temporary reports whether an accept error may go away by itself: a
// timeout, a connection aborted before it was accepted, or running out of
// descriptors or buffers.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
