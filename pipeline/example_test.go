package pipeline_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/pipeline"
)

// A gzip filter on each end of a pair: what one side writes travels
// compressed and arrives as written; Drain finishes the gzip stream and
// the far end reads EOF.
func ExampleNewFilter() {
	base := actor.NewBase()
	defer base.Close()
	a, b, _ := actor.NewPair(base, 0)
	sender, _ := pipeline.NewFilter(a, nil, pipeline.Gzip(), actor.CloseOnFree)
	receiver, _ := pipeline.NewFilter(b, pipeline.Gunzip(), nil, actor.CloseOnFree)
	defer receiver.Close()

	done := make(chan struct{})
	receiver.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			for {
				line, err := s.Input().ReadLine(actor.EOLLF)
				if err != nil {
					return
				}
				fmt.Printf("%s\n", line)
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			fmt.Println(ev)
			close(done)
		},
	})
	receiver.Enable(actor.Read)

	sender.Write([]byte("hello\nfrom the other side\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sender.Drain(ctx)
	<-done
	// Output:
	// hello
	// from the other side
	// Reading|EOF
}

// A net.Conn view of one end of a pair: io.ReadAll sees what the other
// end wrote, then io.EOF once it finished its stream.
func ExampleNewConn() {
	base := actor.NewBase()
	defer base.Close()
	a, b, _ := actor.NewPair(base, 0)
	c, _ := pipeline.NewConn(a)
	defer c.Close()

	b.Write([]byte("through a net.Conn"))
	b.Flush(actor.Write, actor.Finished)
	p, err := io.ReadAll(c)
	fmt.Printf("%q %v\n", p, err)
	// Output: "through a net.Conn" <nil>
}
