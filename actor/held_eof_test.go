package actor_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// endSignalConn closes ended when a Read returns an error.
type endSignalConn struct {
	net.Conn
	once  sync.Once
	ended chan struct{}
}

func (c *endSignalConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.once.Do(func() { close(c.ended) })
	}
	return n, err
}

// TestEOFWhileReadDisabled: an EOF met by a read already under way when
// reading was disabled is not reported until reading is enabled again,
// as libevent notices no EOF while reading is disabled.
func TestEOFWhileReadDisabled(t *testing.T) {
	near, far := net.Pipe()
	c := &endSignalConn{Conn: near, ended: make(chan struct{})}
	b, err := actor.New(nil, c, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	gotData := make(chan struct{}, 1)
	events := make(chan actor.Event, 4)
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			s.Input().Drain(s.Input().Len())
			s.Disable(actor.Read)
			gotData <- struct{}{}
		},
		Event: func(_ *actor.Session, ev actor.Event, _ error) { events <- ev },
	})
	b.Enable(actor.Read)
	go far.Write([]byte("x"))
	timeout := time.After(10 * time.Second)
	select {
	case <-gotData:
	case <-timeout:
		t.Fatal("no data")
	}
	far.Close()
	select {
	case <-c.ended:
	case <-timeout:
		t.Fatal("the pending read never ended")
	}
	for range 10 { // let the actor take the read's result
		b.Do(func(*actor.Session) {})
	}
	select {
	case ev := <-events:
		t.Fatalf("event %v while reading is disabled, want none until Enable(Read)", ev)
	default:
	}
	b.Enable(actor.Read)
	select {
	case ev := <-events:
		if ev != actor.Reading|actor.EOF {
			t.Errorf("event %v after Enable(Read), want Reading|EOF", ev)
		}
	case <-timeout:
		t.Fatal("no EOF after Enable(Read)")
	}
}
