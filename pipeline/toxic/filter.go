package toxic

import (
	"fmt"
	"net"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/netwrap"
	"github.com/bevgo/bev/pipeline"
)

// NewFilter returns a filter over underlying (see pipeline.NewFilter)
// whose input goes through the toxics of set on stream reads and whose
// output through those of the other stream, with timers on underlying's
// Base's clock. reads is Downstream for a client's own connection (what
// it reads comes from the server), Upstream for a connection a proxy
// accepted from a client.
//
// When a toxic ends a stream: reset_peer closes the connection at the
// bottom of the stack at once with an RST (SO_LINGER 0 on the TCP
// connection, under TLS too) and fails the filter with an error wrapping
// ErrReset; a close of the written stream half-closes the underlying once
// what passed before is written (the peer reads EOF); a close of the read
// stream shuts the socket's read side once what passed before was read,
// so that the filter reads EOF, or, under a transport that cannot, fails
// the filter with ErrClosed.
//
// It fails as pipeline.NewFilter does, and with an error wrapping
// ErrInvalid for a nil set or an unknown stream.
func NewFilter(underlying *actor.Bufferevent, set *Set, reads Stream, opts actor.Option) (*actor.Bufferevent, error) {
	if set == nil {
		return nil, fmt.Errorf("%w: nil set", ErrInvalid)
	}
	if underlying == nil {
		return nil, fmt.Errorf("%w: nil underlying bufferevent", ErrInvalid)
	}
	if reads != Upstream && reads != Downstream {
		return nil, fmt.Errorf("%w: stream %d", ErrInvalid, int(reads))
	}
	in, out := set.NewStages(underlying.Base().Clock(), reads)
	f, err := pipeline.NewFilter(underlying, in, out, opts)
	if err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	bind(f, underlying, in, out)
	return f, nil
}

// NewStages returns the two stages NewFilter puts in a filter, for a
// bufferevent made with them directly (actor.NewStaged, or
// conn.ListenerConfig.Stages for every socket a listener accepts), which
// saves the filter's second bufferevent: in for what it reads (stream
// reads), out for what it writes, with timers on clock (nil: the real
// clock). Call Bind with the bufferevent before it reads or writes: until
// then the stages can neither wake it nor end its stream.
func (s *Set) NewStages(clock actor.Clock, reads Stream) (in, out *Stage) {
	writes := Upstream
	if reads == Upstream {
		writes = Downstream
	}
	return s.NewStage(reads, StageConfig{Clock: clock}), s.NewStage(writes, StageConfig{Clock: clock})
}

// Bind ties stages made by NewStages to b, the bufferevent made with
// them: they wake b when a toxic is due, and end its stream as NewFilter
// describes, on the socket under b.
func Bind(b *actor.Bufferevent, in, out *Stage) { bind(b, b, in, out) }

// bind ties in and out to f, the bufferevent they are the stages of,
// whose socket is under (or is) sock.
func bind(f, sock *actor.Bufferevent, in, out *Stage) {
	in.SetEnd(func(reset bool) error { return endRead(sock, reset) })
	out.SetEnd(func(reset bool) error {
		if reset {
			return resetSocket(sock)
		}
		return f.Flush(actor.Write, actor.Finished)
	})
	wake := func() { f.Flush(actor.Read|actor.Write, actor.Normal) } //nolint:errcheck // ErrClosed: nothing to wake
	in.SetWake(wake)
	out.SetWake(wake)
	// Toxics added before the first byte (a timeout) start now.
	wake()
}

// socketOf returns the net.Conn at the bottom of b's stack, or nil.
func socketOf(b *actor.Bufferevent) net.Conn {
	for ; b != nil; b = b.Underlying() {
		if b.Underlying() == nil {
			return b.Conn()
		}
	}
	return nil
}

// resetSocket closes the connection at the bottom of b's stack with an
// RST (netwrap.Reset: SO_LINGER 0 on the TCP connection under every
// layer, TLS included) and returns the error that fails the filter.
func resetSocket(b *actor.Bufferevent) error {
	netwrap.Reset(socketOf(b)) //nolint:errcheck // the error below ends the stream either way
	return ErrReset
}

// endRead ends the read side: a reset, or a shutdown of the socket's
// read side so that EOF comes up through the stack.
func endRead(b *actor.Bufferevent, reset bool) error {
	if reset {
		return resetSocket(b)
	}
	if cr, ok := socketOf(b).(interface{ CloseRead() error }); ok {
		if err := cr.CloseRead(); err == nil {
			return nil
		}
	}
	return ErrClosed
}

// WrapConn returns a net.Conn over c whose reads go through the
// Downstream toxics of set and whose writes through its Upstream ones: a
// test puts it in a dialer (http.Transport's DialContext, a database
// driver's) to break its own client's network in-process. The returned
// Conn is a pipeline.Conn over a socket bufferevent of base (nil is
// valid) that carries the toxics as its stages (NewStages, Bind), and it
// honours the net.Conn contract; closing it closes c. WrapConn fails with
// an error wrapping ErrInvalid for a nil c or set, c then left open; on a
// later failure c is closed.
func WrapConn(base *actor.Base, c net.Conn, set *Set) (net.Conn, error) {
	if c == nil || set == nil {
		return nil, fmt.Errorf("%w: nil conn or set", ErrInvalid)
	}
	in, out := set.NewStages(base.Clock(), Downstream)
	b, err := actor.NewStaged(base, &stagedConn{Conn: c, in: in, out: out}, actor.CloseOnFree, in, out)
	if err != nil {
		in.Close()
		out.Close()
		c.Close()
		return nil, err
	}
	Bind(b, in, out)
	v, err := pipeline.NewConn(b)
	if err != nil {
		b.Close()
		return nil, err
	}
	return v, nil
}

// stagedConn is WrapConn's transport: c, whose Close also closes the
// stages (the bufferevent closes its transport when it stops, and a
// bufferevent made with NewStaged does not close its stages), and which
// passes on the socket calls the toxics use.
type stagedConn struct {
	net.Conn
	in, out *Stage
}

func (c *stagedConn) Close() error {
	err := c.Conn.Close()
	c.in.Close()
	c.out.Close()
	return err
}

func (c *stagedConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return ErrClosed
}

func (c *stagedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("%w: %T cannot half-close", ErrInvalid, c.Conn)
}

// NetConn returns the connection under c, so that netwrap.Reset reaches
// the TCP connection under a wrapped *tls.Conn.
func (c *stagedConn) NetConn() net.Conn { return c.Conn }
