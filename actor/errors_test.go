package actor_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// Tests of errors.go: ErrClosed, and each package's error prefix.

// actor.ErrClosed is also net.ErrClosed, as pipeline.ErrClosed is, and so
// is what a closed bufferevent's methods return.
func TestErrClosedIsNetErrClosed(t *testing.T) {
	if !errors.Is(actor.ErrClosed, net.ErrClosed) {
		t.Errorf("errors.Is(ErrClosed, net.ErrClosed) = false")
	}
	a, _ := testbev.NewPair(t, 0)
	a.Close()
	if err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) || !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed and net.ErrClosed", err)
	}
}

// Each package's prefix appears once in an error string, however the
// error was wrapped, and errors.Is still finds every sentinel (item 13).
func TestErrorPrefixOnce(t *testing.T) {
	var buf actor.Buffer
	_, errLine := buf.ReadLine(actor.EOLStyle(99))
	cases := []struct {
		err  error
		want []error
	}{
		{buf.Drain(-1), []error{actor.ErrInvalid}},
		{errLine, []error{actor.ErrInvalid}},
		{buf.MoveFrom(nil), []error{actor.ErrInvalid}},
	}
	a, _ := testbev.NewPair(t, 0)
	cases = append(cases, struct {
		err  error
		want []error
	}{a.Do(func(*actor.Session) { panic(io.ErrUnexpectedEOF) }), []error{actor.ErrPanic, io.ErrUnexpectedEOF}})
	testkit.Recv(t, a.Done(), "a to stop")
	cases = append(cases, struct {
		err  error
		want []error
	}{a.Write([]byte("x")), []error{actor.ErrClosed, net.ErrClosed}})
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("nil error, want %v", c.want)
			continue
		}
		if n := strings.Count(c.err.Error(), "actor:"); n != 1 {
			t.Errorf("%q says %q %d times, want once", c.err, "actor:", n)
		}
		for _, w := range c.want {
			if !errors.Is(c.err, w) {
				t.Errorf("errors.Is(%q, %v) = false", c.err, w)
			}
		}
	}
}
