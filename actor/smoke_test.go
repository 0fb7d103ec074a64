package actor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

func TestSmokePair(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	wrote := make(chan struct{}, 1)
	a.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		if s.Output().Len() == 0 {
			wrote <- struct{}{}
		}
	}})
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		if s.Input().Len() == 8333 {
			var buf actor.Buffer
			s.ReadBuffer(&buf)
			p := make([]byte, buf.Len())
			buf.Read(p)
			got <- p
			s.Disable(actor.Read)
		}
	}})
	b.Enable(actor.Read)
	want := make([]byte, 8333)
	for i := range want {
		want[i] = byte(i)
	}
	a.Write(want)
	select {
	case p := <-got:
		if !bytes.Equal(p, want) {
			t.Fatal("mismatch")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timeout read")
	}
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("timeout write")
	}
}
