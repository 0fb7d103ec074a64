// Command rawecho is the plain-Go baseline of the echo comparison
// (bench/echo.sh): the echo server a Go programmer writes without a
// library. Each accepted connection gets one goroutine that copies what it
// reads back to it with io.CopyBuffer through a 32 KiB buffer, and closes
// the connection when the client has closed its side or the copy fails.
//
//	usage: rawecho -addr 127.0.0.1:PORT
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "`address` to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawecho:", err)
		os.Exit(2)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "rawecho:", err)
			os.Exit(1)
		}
		go echo(c)
	}
}

// echo sends back everything c sends until c's side ends, then closes c.
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	// The wrappers hide *net.TCPConn's ReadFrom and WriteTo: with them
	// io.CopyBuffer would ignore buf and Linux would splice through a pipe,
	// which is not the loop this baseline stands for.
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, buf)
}
