package conn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// TestListenerChannel: without a callback, accepted sockets come on the
// Accepted channel, which closes with the listener.
func TestListenerChannel(t *testing.T) {
	base := testbev.NewBase(t)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dialListener(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	s, err := ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept = %v, want a socket", err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for chunk := range s.In() {
		got = append(got, chunk...)
		if len(got) >= 4 {
			break
		}
	}
	if string(got) != "ping" {
		t.Errorf("socket read %q, want %q", got, "ping")
	}
	if err := ln.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
	if err := ln.Close(); err != nil {
		t.Errorf("second Close = %v, want nil (the first result)", err)
	}
	if _, err := ln.Accept(ctx); !errors.Is(err, conn.ErrListenerClosed) {
		t.Errorf("Accept after Close = %v, want ErrListenerClosed", err)
	}
	if ln.Err() != nil {
		t.Errorf("Err() after Close = %v, want nil", ln.Err())
	}
	s.Close()
}

// TestListenerBaseClose: the Base's Close closes the listener and every
// socket it accepted.
func TestListenerBaseClose(t *testing.T) {
	base := actor.NewBase()
	accepted := make(chan *conn.Socket, 1)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
		s.Enable(actor.Read)
		accepted <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	dialListener(t, ln)
	s := testkit.Recv(t, accepted, "the accepted socket")
	if err := base.Close(); err != nil {
		t.Errorf("Base.Close = %v, want nil", err)
	}
	select {
	case <-ln.Done():
	default:
		t.Errorf("the listener's loop still runs after Base.Close")
	}
	select {
	case <-s.Done():
	default:
		t.Errorf("the accepted socket still runs after Base.Close")
	}
	if _, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{}, nil); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Listen on a closed Base = %v, want ErrClosed", err)
	}
}

// flakyListener fails Accept with the given errors, then hands out its
// connections, then blocks until closed.
type flakyListener struct {
	errs  chan error
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *flakyListener) Accept() (net.Conn, error) {
	select {
	case err := <-l.errs:
		return nil, err
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *flakyListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *flakyListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestListenerAcceptWhileClosing: an Accept that waits returns once the
// listener is closed from another goroutine, directly or by its Base's
// Close (an error wrapping ErrListenerClosed), or once its context is
// cancelled (an error wrapping the cancel's cause).
func TestListenerAcceptWhileClosing(t *testing.T) {
	stopped := errors.New("stopped by the test")
	for _, how := range []string{"Close", "Base.Close", "cancel"} {
		t.Run(how, func(t *testing.T) {
			base := testbev.NewBase(t)
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			accepted := make(chan error, 1)
			go func() {
				s, err := ln.Accept(ctx)
				if s != nil {
					s.Close()
				}
				accepted <- err
			}()
			switch how {
			case "Close":
				go ln.Close()
			case "Base.Close":
				go base.Close()
			default:
				cancel(stopped)
			}
			err = testkit.Recv(t, accepted, "Accept to return after "+how)
			want := conn.ErrListenerClosed
			if how == "cancel" {
				want = stopped
			}
			if !errors.Is(err, want) {
				t.Errorf("Accept after %s = %v, want %v", how, err, want)
			}
			if how != "cancel" {
				testkit.Recv(t, ln.Done(), "the accept loop to end")
			}
		})
	}
}

// TestListenerBackoff: temporary accept errors are retried; a permanent
// one ends the loop, and Err says which.
func TestListenerBackoff(t *testing.T) {
	base := testbev.NewBase(t)
	temp := &os.SyscallError{Syscall: "accept", Err: syscall.EMFILE}
	fl := &flakyListener{errs: make(chan error, 3), conns: make(chan net.Conn, 1), done: make(chan struct{})}
	for range 3 {
		fl.errs <- temp
	}
	near, far := net.Pipe()
	defer far.Close()
	fl.conns <- near
	ln, err := conn.NewListener(base, fl, conn.ListenerConfig{Options: actor.CloseOnFree}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	s, err := ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept after 3 temporary errors = %v, want a socket", err)
	}
	s.Close()

	fatal := errors.New("broken")
	fl2 := &flakyListener{errs: make(chan error, 1), conns: make(chan net.Conn), done: make(chan struct{})}
	fl2.errs <- fatal
	ln2, err := conn.NewListener(base, fl2, conn.ListenerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Recv(t, ln2.Done(), "the loop to end on a permanent error")
	if !errors.Is(ln2.Err(), fatal) {
		t.Errorf("Err() = %v, want %v", ln2.Err(), fatal)
	}
	ln2.Close()
	if _, err := conn.NewListener(base, nil, conn.ListenerConfig{}, nil); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewListener(nil) = %v, want ErrInvalid", err)
	}
}

// TestListenerAcceptPanic: a panic in the accept callback does not kill
// the process: the socket it was given is closed, OnError hears an error
// wrapping ErrAcceptPanic and actor.ErrPanic, and the next connection is
// accepted as usual.
func TestListenerAcceptPanic(t *testing.T) {
	base := testbev.NewBase(t)
	errc := make(chan error, 4)
	accepted := make(chan *conn.Socket, 1)
	first := true
	cfg := conn.ListenerConfig{Options: actor.CloseOnFree, OnError: func(err error) { errc <- err }}
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", cfg, func(s *conn.Socket) {
		if first {
			first = false
			panic("boom")
		}
		accepted <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	checkPanicContained(t, ln, errc, accepted, "boom")
}

// checkPanicContained dials ln, whose first connection panics with value,
// and checks that the panic was contained: OnError (errc) hears
// ErrAcceptPanic with the *actor.PanicError, that connection is closed
// (the client reads EOF), and the next one is accepted as usual.
func checkPanicContained(t *testing.T, ln *conn.Listener, errc <-chan error, accepted <-chan *conn.Socket, value string) {
	t.Helper()
	c1 := dialListener(t, ln)
	got := testkit.Recv(t, errc, "the panic reported to OnError")
	var pe *actor.PanicError
	if !errors.Is(got, conn.ErrAcceptPanic) || !errors.Is(got, actor.ErrPanic) || !errors.As(got, &pe) || pe.Value != value {
		t.Errorf("OnError got %v, want ErrAcceptPanic with the PanicError of %q", got, value)
	}
	if n, err := c1.Read(make([]byte, 1)); err == nil {
		t.Errorf("the connection whose set-up panicked (%q) gave %d bytes, want it closed", value, n)
	}
	dialListener(t, ln)
	s := testkit.Recv(t, accepted, "the next connection, accepted after the panic")
	s.Close()
}

// wrapPanicLayer is a Layer whose Wrap panics.
type wrapPanicLayer struct{}

func (wrapPanicLayer) Wrap(net.Conn, string) (actor.Transport, error) { panic("Wrap") }

// plainLayer is a Layer that adds nothing: the transport is the conn.
type plainLayer struct{}

func (plainLayer) Wrap(c net.Conn, _ string) (actor.Transport, error) { return c, nil }

// TestListenerFactoryPanic: the per-connection user code the listener
// TestListenerFactoryPanic: what the listener calls for a connection
// before the accept callback, ListenerConfig.Layer and Stages and
// the layer's Wrap, is contained as the callback is: a panic closes that
// connection, OnError hears ErrAcceptPanic with the *actor.PanicError, and
// the next connection is accepted as usual.
func TestListenerFactoryPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(first func() bool) conn.ListenerConfig
	}{
		{"Layer", func(first func() bool) conn.ListenerConfig {
			return conn.ListenerConfig{Layer: func() conn.Layer {
				if first() {
					panic("Layer")
				}
				return plainLayer{}
			}}
		}},
		{"Wrap", func(first func() bool) conn.ListenerConfig {
			return conn.ListenerConfig{Layer: func() conn.Layer {
				if first() {
					return wrapPanicLayer{}
				}
				return plainLayer{}
			}}
		}},
		{"Stages", func(first func() bool) conn.ListenerConfig {
			return conn.ListenerConfig{Stages: func() (in, out actor.Stage) {
				if first() {
					panic("Stages")
				}
				return nil, nil
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			errc := make(chan error, 4)
			accepted := make(chan *conn.Socket, 1)
			calls := 0 // the accept loop's: it makes one socket at a time
			cfg := tc.cfg(func() bool { calls++; return calls == 1 })
			cfg.Options = actor.CloseOnFree
			cfg.OnError = func(err error) { errc <- err }
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", cfg, func(s *conn.Socket) { accepted <- s })
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			checkPanicContained(t, ln, errc, accepted, tc.name)
		})
	}
}

// upper is a stage that upper-cases ASCII letters.
type upper struct{}

func (upper) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	n := src.Len()
	if limit >= 0 {
		n = min(n, limit)
	}
	if n == 0 {
		return actor.StageNeedMore, nil
	}
	p := make([]byte, n)
	src.Read(p)
	dst.Write(bytes.ToUpper(p))
	return actor.StageOK, nil
}

// TestListenerStages: every accepted socket gets the stages Stages makes,
// input and output, with no filter on top.
func TestListenerStages(t *testing.T) {
	base := testbev.NewBase(t)
	var made atomic.Int32
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{
		Options: actor.CloseOnFree,
		Stages: func() (in, out actor.Stage) {
			made.Add(1)
			return upper{}, upper{}
		},
	}, func(s *conn.Socket) {
		if s.Underlying() != nil {
			t.Errorf("accepted socket has an underlying bufferevent: a filter, not stages")
		}
		s.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
			p := make([]byte, s.Input().Len())
			s.Input().Read(p)
			s.Write(append([]byte("echo "), p...)) // the output stage upper-cases this too
		}})
		s.Enable(actor.Read | actor.Write)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dialListener(t, ln)
	c.Write([]byte("hi"))
	got := make([]byte, len("ECHO HI"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ECHO HI" {
		t.Fatalf("read %q, %v; want %q", got, err, "ECHO HI")
	}
	if n := made.Load(); n != 1 {
		t.Errorf("Stages called %d times for one connection", n)
	}
}

// A Listener not made by Listen or NewListener, a zero value or a nil
// pointer, fails with ErrInvalid or gives its zero result, and its Done
// is closed; none panics or blocks (a zero Listener's Close panicked on
// its nil channel, Addr on its nil net.Listener, and Done never closed).
func TestZeroListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    *conn.Listener
	}{{"zero", new(conn.Listener)}, {"nil", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.l
			if err := l.Close(); !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("Close() = %v, want ErrInvalid", err)
			}
			if _, err := l.Accept(context.Background()); !errors.Is(err, actor.ErrInvalid) {
				t.Errorf("Accept() = %v, want ErrInvalid", err)
			}
			if l.Addr() != nil || l.Accepted() != nil || l.Err() != nil {
				t.Errorf("Addr() = %v, Accepted() = %v, Err() = %v, want nil each", l.Addr(), l.Accepted(), l.Err())
			}
			testkit.Recv(t, l.Done(), "Done of a "+tc.name+" Listener")
		})
	}
}
