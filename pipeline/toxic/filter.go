package toxic

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/pipeline"
)

// NewFilter returns a filter over underlying (see pipeline.NewFilter)
// whose input goes through the toxics of set on stream reads and whose
// output through those of the other stream, with timers on underlying's
// Base's clock. reads is Downstream for a client's own connection (what
// it reads comes from the server), Upstream for a connection a proxy
// accepted from a client.
//
// When a toxic ends a stream: reset_peer sets SO_LINGER 0 on the socket
// under the stack, if it is TCP, and fails the filter with an error
// wrapping ErrReset (closing the underlying with CloseOnFree sends the
// RST); a close of the written stream half-closes the underlying once
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
	writes := Upstream
	if reads == Upstream {
		writes = Downstream
	}
	clock := underlying.Base().Clock()
	in := set.NewStage(reads, StageConfig{Clock: clock, End: func(reset bool) error {
		return endRead(underlying, reset)
	}})
	var filter atomic.Pointer[actor.Bufferevent] // set before any byte can reach out
	out := set.NewStage(writes, StageConfig{Clock: clock, End: func(reset bool) error {
		if reset {
			return resetSocket(underlying)
		}
		return filter.Load().Flush(actor.Write, actor.Finished)
	}})
	f, err := pipeline.NewFilter(underlying, in, out, opts)
	if err != nil {
		in.Close()
		out.Close()
		return nil, err
	}
	filter.Store(f)
	wake := func() { f.Flush(actor.Read|actor.Write, actor.Normal) } //nolint:errcheck // ErrClosed: nothing to wake
	in.SetWake(wake)
	out.SetWake(wake)
	// Toxics added before the first byte (a timeout) start now.
	wake()
	return f, nil
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

// resetSocket arms an RST for when the socket closes and returns the
// error that fails the filter (and so closes it).
func resetSocket(b *actor.Bufferevent) error {
	if tc, ok := socketOf(b).(*net.TCPConn); ok {
		tc.SetLinger(0) //nolint:errcheck // best effort: the error below closes the stream anyway
	}
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
// Conn is a pipeline.Conn over a toxic filter over a socket bufferevent
// of base (nil is valid) and honours the net.Conn contract; closing it
// closes c. WrapConn fails with an error wrapping ErrInvalid for a nil c
// or set, c then left open; on a later failure c is closed.
func WrapConn(base *actor.Base, c net.Conn, set *Set) (net.Conn, error) {
	if c == nil || set == nil {
		return nil, fmt.Errorf("%w: nil conn or set", ErrInvalid)
	}
	s, err := conn.New(base, c, actor.CloseOnFree)
	if err != nil {
		return nil, err
	}
	f, err := NewFilter(s.Bufferevent, set, Downstream, actor.CloseOnFree)
	if err != nil {
		s.Close()
		return nil, err
	}
	v, err := pipeline.NewConn(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}
