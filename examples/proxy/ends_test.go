package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testconn"
)

// TestTargetEndsFirst is an HTTP/1.0 exchange through the proxy, where the
// target answers and ends its stream first, and the client then sends a
// last few bytes and ends its own. Once both streams have ended the proxy
// closes the target without half-closing it first (closesWhole): the
// target must still get the client's last bytes whole and then a clean
// EOF, not a reset, and the client the whole answer and then EOF.
func TestTargetEndsFirst(t *testing.T) {
	ln := testconn.Listen(t)
	request := []byte("GET / HTTP/1.0\r\n\r\n")
	answer := bytes.Repeat([]byte("x"), 64<<10)
	tail := []byte("the client's last words")
	type result struct {
		got []byte
		err error
	}
	served := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		req := make([]byte, len(request))
		if _, err := io.ReadFull(c, req); err != nil {
			served <- result{err: err}
			return
		}
		if _, err := c.Write(answer); err != nil {
			served <- result{err: err}
			return
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c) // the tail, then EOF: a reset would be an error
		served <- result{got, err}
	}()
	p := startProxy(t, "-target", ln.Addr().String())
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(request); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, answer) {
		t.Fatalf("client read %d bytes, %v; want the %d of the answer, then EOF", len(got), err, len(answer))
	}
	if _, err := c.Write(tail); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	var res result
	select {
	case res = <-served:
	case <-time.After(30 * time.Second):
		t.Fatal("the target got no EOF within 30 s")
	}
	if res.err != nil || !bytes.Equal(res.got, tail) {
		t.Errorf("target read %q, %v after its answer; want %q, then EOF", res.got, res.err, tail)
	}
	// The client's side ends cleanly too: EOF, not a reset, after the
	// proxy closes it.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("client read %d, %v after both ends; want 0, EOF", n, err)
	}
}
