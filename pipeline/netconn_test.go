package pipeline_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/pipeline"
)

// makePipe returns a nettest.MakePipe whose two ends are Conn views of
// the bufferevents wrap makes over a link of the given kind.
func makePipe(t *testing.T, kind string, wrap func(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent)) nettest.MakePipe {
	return func() (net.Conn, net.Conn, func(), error) {
		base := actor.NewBase()
		a, b := newLink(t, base, kind, 0)
		if wrap != nil {
			a, b = wrap(t, a, b)
		}
		c1, err := pipeline.NewConn(a)
		if err != nil {
			base.Close()
			return nil, nil, nil, err
		}
		c2, err := pipeline.NewConn(b)
		if err != nil {
			c1.Close()
			base.Close()
			return nil, nil, nil, err
		}
		stop := func() {
			c1.Close()
			c2.Close()
			if err := base.Close(); err != nil {
				t.Errorf("base.Close() = %v", err)
			}
		}
		return c1, c2, stop, nil
	}
}

func TestConnNettest(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) { nettest.TestConn(t, makePipe(t, kind, nil)) })
	}
}

// passFilters wraps both ends in pass-through filters with CloseOnFree.
func passFilters(t testing.TB, a, b *actor.Bufferevent) (*actor.Bufferevent, *actor.Bufferevent) {
	t.Helper()
	fa, err := pipeline.NewFilter(a, nil, pipeline.PassThrough(), actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	fb, err := pipeline.NewFilter(b, pipeline.PassThrough(), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	return fa, fb
}

// The view passes the conformance suite over filters as well.
func TestConnNettestOverFilters(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) { nettest.TestConn(t, makePipe(t, kind, passFilters)) })
	}
}

func TestNewConnErrors(t *testing.T) {
	if _, err := pipeline.NewConn(nil); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("NewConn(nil) = %v, want ErrInvalid", err)
	}
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	closeAll(t, a, b)
	if _, err := pipeline.NewConn(a); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("NewConn(closed) = %v, want ErrClosed", err)
	}
}

// Errors follow net.Conn conventions: io.EOF bare, ErrClosed matching
// net.ErrClosed, timeouts matching os.ErrDeadlineExceeded.
func TestConnErrors(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	c1, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	c2, err := pipeline.NewConn(b)
	if err != nil {
		t.Fatalf("NewConn = %v", err)
	}
	if c1.LocalAddr().Network() != "bev" || c1.RemoteAddr().String() != c2.LocalAddr().String() {
		t.Errorf("addresses %v -> %v, want bev addresses with the partner's as remote", c1.LocalAddr(), c1.RemoteAddr())
	}
	c1.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
	if _, err := c2.Write([]byte("bye")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if err := c2.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite = %v", err)
	}
	if _, err := c2.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after CloseWrite = %v, want net.ErrClosed", err)
	}
	c1.SetReadDeadline(time.Time{})
	got, err := io.ReadAll(c1)
	if err != nil || string(got) != "bye" {
		t.Errorf("ReadAll = %q, %v, want %q, nil", got, err, "bye")
	}
	if err := c1.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) || !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed and net.ErrClosed", err)
	}
	if err := c2.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}
