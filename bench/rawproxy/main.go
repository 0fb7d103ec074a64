// Command rawproxy is the plain-Go baseline of the proxy comparison
// (bench/proxy.sh): the TCP relay a Go programmer writes without a library.
// Each accepted connection gets a connection to the target and one
// goroutine per direction copying with io.CopyBuffer through a 32 KiB
// buffer. When a direction reaches EOF, the write half of its destination
// is closed after the last byte; when it fails, the destination is reset.
//
//	usage: rawproxy -listen 127.0.0.1:PORT -target 127.0.0.1:PORT
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to accept connections on")
	target := flag.String("target", "", "`host:port` to relay to")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "rawproxy: -target is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawproxy:", err)
		os.Exit(2)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fmt.Fprintln(os.Stderr, "rawproxy:", err)
			os.Exit(1)
		}
		go relay(c.(*net.TCPConn), *target)
	}
}

// relay joins client to a new connection to target until both directions
// have ended.
func relay(client *net.TCPConn, target string) {
	defer client.Close()
	c, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	upstream := c.(*net.TCPConn)
	defer upstream.Close()
	var wg sync.WaitGroup
	wg.Go(func() { copyHalf(upstream, client) })
	copyHalf(client, upstream)
	wg.Wait()
}

// copyHalf copies src to dst until src ends, then half-closes dst; if the
// copy fails, dst is reset so its peer learns at once.
func copyHalf(dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	if _, err := io.CopyBuffer(dst, src, buf); err != nil {
		dst.SetLinger(0)
		dst.Close()
		return
	}
	dst.CloseWrite()
}
