package conn_test

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

// BenchmarkEcho measures one round trip through a bev echo server over
// loopback TCP: the client writes size bytes and reads them back. The
// server is examples/echo's: a read callback that moves input to output.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			base := newBase(b)
			ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
				s.SetCallbacks(actor.Callbacks{
					Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
					Event: func(s *actor.Session, ev actor.Event, _ error) {
						if ev&(actor.EOF|actor.Error) != 0 {
							s.Close()
						}
					},
				})
				s.Enable(actor.Read | actor.Write)
			})
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, got := pattern(size), make([]byte, size)
			// A large message may not fit the socket buffers while nobody
			// reads the echo, so a goroutine of the benchmark's writes it.
			next := make(chan struct{})
			errc := make(chan error, 1)
			defer close(next)
			go func() {
				for range next {
					_, err := c.Write(msg)
					errc <- err
				}
			}()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if size <= 16<<10 {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
				} else {
					next <- struct{}{}
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
				if size > 16<<10 {
					if err := <-errc; err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
