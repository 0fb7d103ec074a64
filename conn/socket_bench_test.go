package conn_test

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
)

// BenchmarkEcho measures one round trip through an echo server over
// loopback TCP: the client writes size bytes and reads them back. Two
// servers run in the same benchmark so that their figures can be compared
// as a ratio on a noisy machine: server=bev is examples/echo's (a read
// callback that moves input to output), server=raw is what a Go programmer
// writes by hand and what bench/rawecho runs (a goroutine per connection,
// io.CopyBuffer with a 32 KiB buffer).
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 4 << 10, 64 << 10} {
		for _, server := range []string{"raw", "bev"} {
			b.Run(fmt.Sprintf("size=%d/server=%s", size, server), func(b *testing.B) {
				var addr string
				if server == "bev" {
					addr = bevEchoServer(b)
				} else {
					addr = testconn.EchoServer(b)
				}
				benchEcho(b, addr, size)
			})
		}
	}
}

// benchEcho runs the client side of BenchmarkEcho against addr.
func benchEcho(b *testing.B, addr string, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, got := testkit.Pattern(size), make([]byte, size)
	// A large message may not fit the socket buffers while nobody reads
	// the echo, so a goroutine of the benchmark's writes it.
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
}

// bevEchoServer starts examples/echo's server on a loopback port for the
// benchmark's lifetime and returns its address.
func bevEchoServer(b *testing.B) string {
	base := testbev.NewBase(b)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(s *conn.Socket) {
		testbev.Echo(s.Bufferevent, nil)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
