package bev_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testaddr"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// stormSeed seeds the mix of faults; a failure names its case, and the
// same seed replays the same mix.
const stormSeed = 6

const (
	stormConns       = 200
	stormParallel    = 20
	stormReadTimeout = 150 * time.Millisecond
	stormResetAfter  = 4 << 10 // bytes the resetting server reads first
)

type stormKind int

const (
	stormEcho stormKind = iota
	stormReset
	stormTimeout
	stormRefused
	stormCloseConnecting
	stormKinds
)

func (k stormKind) String() string {
	return [...]string{"echo", "reset", "timeout", "refused", "close-while-connecting"}[k]
}

// stormServers are the peers of the storm: an echo server, a server that
// resets each connection once it has read stormResetAfter bytes, a server
// that reads and never answers, and an address where nothing listens.
type stormServers struct {
	echo, reset, silent *conn.Listener
	refused             string
}

func newStormServers(t *testing.T, base *actor.Base) *stormServers {
	t.Helper()
	var ss stormServers
	listen := func(accept func(*conn.Socket)) *conn.Listener {
		ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, accept)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	ss.echo = listen(func(s *conn.Socket) { testbev.Echo(s.Bufferevent, nil) })
	ss.reset = listen(func(s *conn.Socket) {
		read := 0 // touched only by this socket's callbacks
		s.SetCallbacks(actor.Callbacks{
			Read: func(s *actor.Session) {
				read += s.Input().Len()
				s.Input().Drain(s.Input().Len())
				if read >= stormResetAfter {
					// Linger 0: the close sends RST instead of FIN.
					if err := s.Bufferevent().Conn().(*net.TCPConn).SetLinger(0); err != nil {
						t.Errorf("SetLinger(0) = %v, want nil", err)
					}
					s.Close()
				}
			},
			Event: func(s *actor.Session, ev actor.Event, err error) { s.Close() },
		})
		s.Enable(actor.Read)
	})
	ss.silent = listen(func(s *conn.Socket) {
		s.SetCallbacks(actor.Callbacks{
			Read: func(s *actor.Session) { s.Input().Drain(s.Input().Len()) },
			Event: func(s *actor.Session, ev actor.Event, err error) {
				if ev&(actor.EOF|actor.Error) != 0 {
					s.Close()
				}
			},
		})
		s.Enable(actor.Read)
	})
	// Bound but not listening: refused, and no other test can take it.
	ss.refused = testaddr.Refused(t)
	return &ss
}

// stormClient is a socket whose event callback records every event, in
// order, for the case to compare with what it expects.
type stormClient struct {
	*conn.Socket
	events chan actor.EventInfo
}

func newStormClient(t *testing.T, base *actor.Base, cbs actor.Callbacks) (*stormClient, error) {
	s, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		return nil, fmt.Errorf("conn.New = %v, want nil", err)
	}
	c := &stormClient{Socket: s, events: make(chan actor.EventInfo, 16)}
	onEvent := cbs.Event
	cbs.Event = func(s *actor.Session, ev actor.Event, err error) {
		select {
		case c.events <- actor.EventInfo{Event: ev, Err: err}:
		default:
			t.Errorf("more than %d events", cap(c.events))
		}
		if onEvent != nil {
			onEvent(s, ev, err)
		}
	}
	s.SetCallbacks(cbs)
	return c, nil
}

// closed closes the socket and returns every event it reported; no
// callback runs once Close has returned.
func (c *stormClient) closed() []actor.EventInfo {
	c.Close()
	return testkit.Pending(c.events)
}

func eventNames(evs []actor.EventInfo) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v (%v)", e.Event, e.Err)
	}
	b.WriteByte(']')
	return b.String()
}

// TestConnectStorm runs 200 connections, 20 at a time, each a seeded pick
// of: a normal echo exchange, a peer that resets mid-stream, a read
// timeout against a server that never answers, a refused connect, and a
// Close while the connect is in flight. Each ends exactly as TCP allows:
// the bytes echoed back exactly, then the server's EOF; after a reset, one Error with ECONNRESET (or EPIPE on a write), possibly after a
// Reading|EOF when a write took the reset first; one Reading|Timeout; one
// Error with ECONNREFUSED and nothing else; no event at all. Nothing is
// left running afterwards.
func TestConnectStorm(t *testing.T) {
	base := testbev.NewBase(t)
	ss := newStormServers(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()

	mix := rand.New(rand.NewPCG(stormSeed, 0))
	var counts [stormKinds]int
	sem := make(chan struct{}, stormParallel)
	var wg sync.WaitGroup
	for i := range stormConns {
		kind := stormKind(mix.IntN(int(stormKinds)))
		counts[kind]++
		seed := mix.Uint64()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			t.Errorf("case %d: no free slot before %v", i, ctx.Err())
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			if err := stormCase(ctx, t, base, ss, kind, r); err != nil {
				t.Errorf("case %d (%v): %v", i, kind, err)
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	testkit.Recv(t, finished, "every case")
	for k, n := range counts {
		if n == 0 {
			t.Errorf("seed %d picked no %v case, want every kind", stormSeed, stormKind(k))
		}
	}
	t.Logf("seed %d: %v echo, %v reset, %v timeout, %v refused, %v close-while-connecting", stormSeed,
		counts[stormEcho], counts[stormReset], counts[stormTimeout], counts[stormRefused], counts[stormCloseConnecting])
	closeAndCheck(t, base)
}

// stormCase runs one connection of the storm and says how its outcome
// differs from the one expected, or returns nil.
func stormCase(ctx context.Context, t *testing.T, base *actor.Base, ss *stormServers, kind stormKind, r *rand.Rand) error {
	switch kind {
	case stormEcho:
		return stormEchoCase(ctx, t, base, ss, r)
	case stormReset:
		return stormResetCase(ctx, t, base, ss, r)
	case stormTimeout:
		return stormTimeoutCase(ctx, t, base, ss)
	case stormRefused:
		return stormRefusedCase(ctx, t, base, ss)
	default:
		return stormCloseConnectingCase(ctx, t, base)
	}
}

// stormRefusedCase connects where nothing listens: exactly one Error,
// with no direction and ECONNREFUSED, and no data callback.
func stormRefusedCase(ctx context.Context, t *testing.T, base *actor.Base, ss *stormServers) error {
	c, err := newStormClient(t, base, actor.Callbacks{
		Read:  func(*actor.Session) { t.Errorf("read callback after a refused connect") },
		Write: func(*actor.Session) { t.Errorf("write callback after a refused connect") },
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.Enable(actor.Read | actor.Write)
	if err := c.Write([]byte("never sent")); err != nil {
		return fmt.Errorf("Write = %v, want nil", err)
	}
	if err := c.ConnectAddr(ctx, "tcp", ss.refused); err != nil {
		return fmt.Errorf("ConnectAddr = %v, want nil", err)
	}
	var first actor.EventInfo
	select {
	case first = <-c.events:
	case <-ctx.Done():
		return fmt.Errorf("no event before %v, want Error", ctx.Err())
	}
	if first.Event != actor.Error || !errors.Is(first.Err, syscall.ECONNREFUSED) {
		return fmt.Errorf("event %v (%v), want Error (ECONNREFUSED)", first.Event, first.Err)
	}
	// Every event the actor had queued runs before Do returns.
	if err := c.Do(func(*actor.Session) {}); err != nil {
		return fmt.Errorf("Do = %v, want nil", err)
	}
	if evs := c.closed(); len(evs) != 0 {
		return fmt.Errorf("events %s after the refused connect's Error, want none", eventNames(evs))
	}
	return nil
}

// stormEchoCase sends 1 byte to 64 KiB of random bytes, half-closes, and
// reads the echo through In until the server's EOF: exactly the bytes
// sent, then Reading|EOF.
func stormEchoCase(ctx context.Context, t *testing.T, base *actor.Base, ss *stormServers, r *rand.Rand) error {
	c, err := newStormClient(t, base, actor.Callbacks{})
	if err != nil {
		return err
	}
	defer c.Close()
	in := c.In()
	if err := c.ConnectAddr(ctx, "tcp", ss.echo.Addr().String()); err != nil {
		return fmt.Errorf("ConnectAddr = %v, want nil", err)
	}
	want := make([]byte, 1+r.IntN(64<<10))
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	if err := c.Send(ctx, want); err != nil {
		return fmt.Errorf("Send(%d bytes) = %v, want nil", len(want), err)
	}
	if err := c.Flush(actor.Write, actor.Finished); err != nil {
		return fmt.Errorf("Flush(Write, Finished) = %v, want nil", err)
	}
	var got []byte
	for open := true; open; {
		select {
		case p, ok := <-in:
			got = append(got, p...)
			open = ok
		case <-ctx.Done():
			return fmt.Errorf("echoed %d of %d bytes and no EOF before %v", len(got), len(want), ctx.Err())
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo of %d bytes: got %d bytes back, want the same bytes", len(want), len(got))
	}
	if err := c.Err(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("Err() = %v after In closed, want EOF", err)
	}
	evs := c.closed()
	if len(evs) != 2 || evs[0].Event != actor.Connected || evs[1].Event != actor.Reading|actor.EOF {
		return fmt.Errorf("events %s, want [Connected, Reading|EOF]", eventNames(evs))
	}
	return nil
}

// stormResetCase streams random bytes, from the write callback, to the
// server that resets after stormResetAfter bytes, and closes on the Error.
//
// The server's RST reaches whichever loop asks the socket next. A read
// gets ECONNRESET. A write gets ECONNRESET too and takes the error, so a
// later read returns 0: EOF. A write after a read took it gets EPIPE. So
// the events are Connected and then Reading|Error with ECONNRESET, or
// Writing|Error with ECONNRESET or EPIPE, possibly after a Reading|EOF.
func stormResetCase(ctx context.Context, t *testing.T, base *actor.Base, ss *stormServers, r *rand.Rand) error {
	chunk := make([]byte, 1+r.IntN(16<<10))
	for i := range chunk {
		chunk[i] = byte(r.Uint32())
	}
	c, err := newStormClient(t, base, actor.Callbacks{
		Read:  func(s *actor.Session) { s.Input().Drain(s.Input().Len()) },
		Write: func(s *actor.Session) { s.Write(chunk) }, // keep streaming
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev&actor.Error != 0 {
				s.Close()
			}
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	c.Enable(actor.Read | actor.Write)
	c.Write(chunk)
	if err := c.ConnectAddr(ctx, "tcp", ss.reset.Addr().String()); err != nil {
		return fmt.Errorf("ConnectAddr = %v, want nil", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		return fmt.Errorf("still open at %v, want an Error after the reset; events %s", ctx.Err(), eventNames(c.closed()))
	}
	evs := c.closed()
	if len(evs) < 2 || evs[0].Event != actor.Connected {
		return fmt.Errorf("events %s, want Connected and then the reset", eventNames(evs))
	}
	last := evs[len(evs)-1]
	switch {
	case len(evs) == 2 && last.Event == actor.Reading|actor.Error && errors.Is(last.Err, syscall.ECONNRESET):
	case len(evs) == 2 && last.Event == actor.Writing|actor.Error && (errors.Is(last.Err, syscall.ECONNRESET) || errors.Is(last.Err, syscall.EPIPE)):
	case len(evs) == 3 && evs[1].Event == actor.Reading|actor.EOF &&
		last.Event == actor.Writing|actor.Error && (errors.Is(last.Err, syscall.ECONNRESET) || errors.Is(last.Err, syscall.EPIPE)):
	default:
		return fmt.Errorf("events %s, want Connected, then Reading|Error (ECONNRESET) or Writing|Error (ECONNRESET, EPIPE), the latter possibly after Reading|EOF", eventNames(evs))
	}
	return nil
}

// stormTimeoutCase connects to the server that never answers and then
// sets a read timeout: one Reading|Timeout, no sooner than the timeout,
// and nothing after it, since the timeout disables reading. The timeout
// is set once connected: a read timeout also runs while a connect is in
// flight (as libevent's does), and a loaded machine may take that long to
// connect.
func stormTimeoutCase(ctx context.Context, t *testing.T, base *actor.Base, ss *stormServers) error {
	c, err := newStormClient(t, base, actor.Callbacks{})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.ConnectAddr(ctx, "tcp", ss.silent.Addr().String()); err != nil {
		return fmt.Errorf("ConnectAddr = %v, want nil", err)
	}
	var e actor.EventInfo
	select {
	case e = <-c.events:
	case <-ctx.Done():
		return fmt.Errorf("no event before %v, want Connected", ctx.Err())
	}
	if e.Event != actor.Connected {
		return fmt.Errorf("event %v (%v), want Connected", e.Event, e.Err)
	}
	start := time.Now()
	if err := c.SetTimeouts(stormReadTimeout, 0); err != nil {
		return fmt.Errorf("SetTimeouts = %v, want nil", err)
	}
	c.Enable(actor.Read)
	if err := c.Write([]byte("anyone there?")); err != nil {
		return fmt.Errorf("Write = %v, want nil", err)
	}
	select {
	case e = <-c.events:
	case <-ctx.Done():
		return fmt.Errorf("no event before %v, want Reading|Timeout", ctx.Err())
	}
	if d := time.Since(start); d < stormReadTimeout {
		return fmt.Errorf("timed out after %v, want at least %v", d, stormReadTimeout)
	}
	if e.Event != actor.Reading|actor.Timeout || !errors.Is(e.Err, actor.ErrTimeout) {
		return fmt.Errorf("event %v (%v), want Reading|Timeout (%v)", e.Event, e.Err, actor.ErrTimeout)
	}
	// Every event the actor had queued runs before Do returns.
	if err := c.Do(func(*actor.Session) {}); err != nil {
		return fmt.Errorf("Do = %v, want nil", err)
	}
	if c.Enabled()&actor.Read != 0 {
		return fmt.Errorf("Enabled() = %v after the read timeout, want Read off", c.Enabled())
	}
	if evs := c.closed(); len(evs) != 0 {
		return fmt.Errorf("events %s after the timeout, want none", eventNames(evs))
	}
	return nil
}

// stormCloseConnectingCase closes a socket whose connect has started and
// cannot finish: Close cancels and joins it and reports no event at all.
func stormCloseConnectingCase(ctx context.Context, t *testing.T, base *actor.Base) error {
	c, err := newStormClient(t, base, actor.Callbacks{})
	if err != nil {
		return err
	}
	defer c.Close()
	started := make(chan struct{})
	dial := func(dctx context.Context) (net.Conn, error) {
		close(started)
		<-dctx.Done()
		return nil, context.Cause(dctx)
	}
	if err := c.ConnectWith(ctx, dial); err != nil {
		return fmt.Errorf("ConnectWith = %v, want nil", err)
	}
	select {
	case <-started:
	case <-ctx.Done():
		return fmt.Errorf("dial not started before %v", ctx.Err())
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			return fmt.Errorf("Close with a connect in flight = %v, want nil", err)
		}
	case <-ctx.Done():
		return fmt.Errorf("Close with a connect in flight still blocked at %v", ctx.Err())
	}
	if evs := c.closed(); len(evs) != 0 {
		return fmt.Errorf("events %s after Close during a connect, want none", eventNames(evs))
	}
	if err := c.Err(); !errors.Is(err, actor.ErrClosed) {
		return fmt.Errorf("Err() = %v after Close during a connect, want %v", err, actor.ErrClosed)
	}
	return nil
}
