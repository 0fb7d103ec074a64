package actor

import (
	"errors"
	"io"
	"syscall"
	"testing"
)

// A pipe's write fails as a socketpair's would, and matches io.ErrClosedPipe
// too: after its own CloseWrite and after the partner closed, with EPIPE (a
// socket's write after shutdown(SHUT_WR) or to a closed peer); on its own
// closed end with io.ErrClosedPipe alone. Code that allows a socket's EPIPE
// then allows a pair's in the same places (TestCloseWhileCallsWait's Send
// after a Drain's half-close once read a pair's plain io.ErrClosedPipe).
func TestPipeWriteErrors(t *testing.T) {
	write := func(p *pipe) error {
		_, err := p.Write([]byte("x"))
		return err
	}
	writeBuffer := func(p *pipe) error {
		var b Buffer
		b.Write([]byte("x"))
		defer b.release()
		_, err := p.WriteBuffer(&b, true)
		return err
	}
	for name, w := range map[string]func(*pipe) error{"Write": write, "WriteBuffer": writeBuffer} {
		t.Run(name, func(t *testing.T) {
			p, q := newPipe()
			p.CloseWrite()
			if err := w(p); !errors.Is(err, syscall.EPIPE) || !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("after CloseWrite: %v, want EPIPE and io.ErrClosedPipe", err)
			}
			q.Close()
			r, s := newPipe()
			s.Close()
			if err := w(r); !errors.Is(err, syscall.EPIPE) || !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("to a closed partner: %v, want EPIPE and io.ErrClosedPipe", err)
			}
			r.Close()
			if err := w(r); err != io.ErrClosedPipe {
				t.Errorf("on a closed end: %v, want io.ErrClosedPipe", err)
			}
			p.Close()
		})
	}
}
