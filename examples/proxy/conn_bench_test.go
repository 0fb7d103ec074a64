package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testconn"
)

// oneShotServer is an upstream of HTTP/1.0's shape on 127.0.0.1: each
// connection's first read is taken as the request, answered with answer,
// and the connection closed. It is stopped and joined at cleanup.
func oneShotServer(tb testing.TB, answer []byte) string {
	tb.Helper()
	ln := testconn.Listen(tb)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 512)
				if _, err := c.Read(buf); err != nil {
					return
				}
				c.Write(answer)
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// exchange is one request and its answer on a new connection to addr,
// read to EOF, as `ab` makes without keep-alive.
func exchange(addr string, request, answer, buf []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(request); err != nil {
		return err
	}
	n, err := io.ReadFull(c, buf[:len(answer)])
	if err != nil || !bytes.Equal(buf[:n], answer) {
		return errors.Join(errors.New("short or wrong answer"), err)
	}
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		return errors.Join(errors.New("no EOF after the answer"), err)
	}
	return nil
}

// BenchmarkConn relays one connection per op, an HTTP/1.0 exchange of a
// 20-byte request and a 100-byte answer (bench/proxy.sh's `ab` load, in
// process): "direct" is the client and upstream alone, "proxy" the same
// through the proxy (-log-level warn, so that the log line's buffer does
// not grow with b.N). The proxy's cost per connection is the difference:
// in allocs/op and B/op, and in ns/op on an idle machine.
func BenchmarkConn(b *testing.B) {
	request := []byte("GET / HTTP/1.0\r\n\r\n")
	answer := bytes.Repeat([]byte("x"), 100)
	upstream := oneShotServer(b, answer)
	for _, via := range []string{"direct", "proxy"} {
		b.Run(via, func(b *testing.B) {
			addr := upstream
			if via == "proxy" {
				addr = startProxy(b, "-target", upstream, "-log-level", "warn").addr
			}
			buf := make([]byte, 512)
			b.SetBytes(int64(len(request) + len(answer)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := exchange(addr, request, answer, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
