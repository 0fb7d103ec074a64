package conn_test

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
)

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
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hi"))
	got := make([]byte, len("ECHO HI"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ECHO HI" {
		t.Fatalf("read %q, %v; want %q", got, err, "ECHO HI")
	}
	if n := made.Load(); n != 1 {
		t.Errorf("Stages called %d times for one connection", n)
	}
}
