// Package testconn gives bev's tests both ends of a real loopback
// connection, for the cases where a socket's own behaviour (kernel
// buffers, half-close, resets, the side door of package actor) is what is
// tested, and the loopback listeners and servers that tests dial.
package testconn

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// acceptTimeout bounds the wait for the listener's side of the pair.
const acceptTimeout = 10 * time.Second

// Listen returns a TCP listener on 127.0.0.1 at a free port, closed when
// the test ends (closing it earlier is fine, and is how a test makes its
// accept loop return before it waits for it). It is a *net.TCPListener
// for the tests that set its deadline or reach its socket. A failure to
// listen fails the test with t.Fatalf.
func Listen(t testing.TB) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testconn.Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// Pair returns the client and the server end of a connection over
// network "tcp" (on 127.0.0.1) or "unix" (a socket in t.TempDir()). Both
// are closed when the test ends (closing them earlier is fine). Anything
// that goes wrong, an accept that takes over 10 s included, fails the
// test.
func Pair(t testing.TB, network string) (client, server net.Conn) {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ac := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ac <- accepted{c, err}
	}()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	select {
	case a := <-ac:
		if a.err != nil {
			t.Fatal(a.err)
		}
		server = a.c
	case <-time.After(acceptTimeout):
		t.Fatalf("no accept within %v", acceptTimeout)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// TCPConns returns the client and the server end of a loopback TCP
// connection on 127.0.0.1, as Pair(t, "tcp") but typed, for the tests
// that half-close or set socket options. Both are closed when the test
// ends; failures fail the test.
func TCPConns(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	c, s := Pair(t, "tcp")
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// EchoServer starts a plain goroutine-per-connection echo server on
// 127.0.0.1 (io.CopyBuffer with 32 KiB, as bench/rawecho) for t's
// lifetime and returns its address, as Serve does.
func EchoServer(t testing.TB) string {
	t.Helper()
	return Serve(t, func(c net.Conn) { io.CopyBuffer(c, c, make([]byte, 32<<10)) })
}

// Serve starts a goroutine-per-connection server on 127.0.0.1 that runs
// handle on each accepted connection, for t's lifetime, and returns its
// address. Each connection is closed when its handle returns. When t
// ends Serve closes the listener and every connection (which ends a
// handle blocked on it), and joins all its goroutines. A failure to
// listen fails t.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln := Listen(t)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // guards following
		conns  []net.Conn
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close() // ends its handle
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
