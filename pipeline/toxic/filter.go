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
// A toxic that ends its stream ends the connection, both streams, as
// toxiproxy's close both sockets: reset_peer closes the connection at the
// bottom of the stack at once with an RST (SO_LINGER 0 on the TCP
// connection, under TLS too) and fails the filter with an error wrapping
// ErrReset; a close (timeout, limit_data, and removing a timeout toxic)
// half-closes the underlying once what passed before is written (the
// peer reads EOF) and shuts the socket's read side, so that the filter
// reads EOF after what passed before; from then on both streams drop
// what comes. Under a transport whose read side cannot be shut (a pair,
// TLS) the read stream goes on, unless the toxic was on it: the filter
// then fails with ErrClosed.
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
	bind(f, underlying, in, out, nil)
	return f, nil
}

// NewStages returns the two stages NewFilter puts in a filter, for a
// bufferevent made with them directly (actor.NewStaged, or
// conn.ListenerConfig.Stages for every socket a listener accepts), which
// saves the filter's second bufferevent: in for what it reads (stream
// reads), out for what it writes, with timers on clock (nil: the real
// clock). Call Bind with the bufferevent before it reads or writes: until
// then the stages can neither wake it nor end its stream. The stages of
// a nil set carry no toxic.
func (s *Set) NewStages(clock actor.Clock, reads Stream) (in, out *Stage) {
	writes := Upstream
	if reads == Upstream {
		writes = Downstream
	}
	return s.NewStage(reads, StageConfig{Clock: clock}), s.NewStage(writes, StageConfig{Clock: clock})
}

// Bind ties stages made by NewStages to b, the bufferevent made with
// them: they wake b when a toxic is due, and end its connection as
// NewFilter describes, on the socket under b.
func Bind(b *actor.Bufferevent, in, out *Stage) { bind(b, b, in, out, nil) }

// BindFunc is Bind, and calls ended on b's goroutine once a toxic has
// ended b's connection (reset reports reset_peer, else a close), after
// the socket's part is done: a proxy uses it to end its other connection
// too, as toxiproxy closes both. ended must not block.
func BindFunc(b *actor.Bufferevent, in, out *Stage, ended func(reset bool)) {
	bind(b, b, in, out, ended)
}

// bind ties in and out to f, the bufferevent they are the stages of,
// whose socket is under (or is) sock.
func bind(f, sock *actor.Bufferevent, in, out *Stage, ended func(reset bool)) {
	in.reads, out.reads = true, false
	c := &connEnd{f: f, sock: sock, in: in, out: out, ended: ended}
	in.SetEnd(func(reset bool) error { return c.end(reset, true) })
	out.SetEnd(func(reset bool) error { return c.end(reset, false) })
	wake := func() { f.Flush(actor.Read|actor.Write, actor.Normal) } //nolint:errcheck // ErrClosed: nothing to wake
	in.SetWake(wake)
	out.SetWake(wake)
	// Toxics added before the first byte (a timeout) start now.
	wake()
}

// connEnd ends a connection for a toxic of either of its stages, as
// toxiproxy's close both sockets: a reset at once; a close ends both
// streams, each after what passed before. Its method runs on f's
// goroutine (where the stages run).
type connEnd struct {
	f, sock  *actor.Bufferevent
	in, out  *Stage
	ended    func(reset bool)
	done     bool // the connection was ended
	readShut bool // its read side was shut
}

// end is the End of the stage on the read side (fromIn) or the write
// side: it resets the socket, or half-closes it once what is queued is
// written and shuts its read side so that EOF comes up after what was
// read; each stage then drops what comes. A transport that cannot shut
// its read side (a pair) keeps it: only the written stream ends, unless
// the toxic was on the read side, which then fails with ErrClosed.
func (c *connEnd) end(reset, fromIn bool) error {
	if c.done {
		if reset {
			return ErrReset
		}
		if fromIn && !c.readShut {
			return ErrClosed
		}
		return nil
	}
	c.done = true
	var err error
	if reset {
		err = resetSocket(c.sock)
	} else {
		c.out.close()
		c.f.Flush(actor.Write, actor.Finished) //nolint:errcheck // ErrClosed: the stream has ended already
		if cr, ok := socketOf(c.sock).(interface{ CloseRead() error }); ok {
			c.readShut = cr.CloseRead() == nil
		}
		if c.readShut {
			c.in.close()
		} else if fromIn {
			err = ErrClosed
		}
	}
	if c.ended != nil {
		c.ended(reset)
	}
	return err
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
