package main

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what streamLoad saw.
type loadResult struct {
	bytes int64         // echoed and checked, all connections together
	took  time.Duration // from the first dial to the last EOF
	errs  []error       // one per failed connection
}

// streamLoad is the proxy tests' load generator: conns connections to an
// echo server at addr each write size-byte messages without pause for
// d, while a second goroutine per connection reads the echo back and
// checks every byte. Then each half-closes and reads the rest until EOF;
// the echo must be exactly what was sent. Byte i of connection k's stream
// is byte(i%251) ^ byte(k), so a byte from the wrong place or the wrong
// connection is caught. Every connection's I/O is bounded by a deadline
// of d plus 60 s.
func streamLoad(addr string, conns, size int, d time.Duration) loadResult {
	start := time.Now()
	var (
		wg    sync.WaitGroup
		total atomic.Int64
		mu    sync.Mutex
		errs  []error
	)
	fail := func(k int, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("connection %d: %w", k, err))
		mu.Unlock()
	}
	for k := range conns {
		wg.Go(func() {
			n, err := streamOne(addr, k, size, d)
			total.Add(n)
			if err != nil {
				fail(k, err)
			}
		})
	}
	wg.Wait()
	return loadResult{bytes: total.Load(), took: time.Since(start), errs: errs}
}

// patternAt fills p with connection k's stream from offset off.
func patternAt(p []byte, k int, off int64) {
	for i := range p {
		p[i] = byte((off+int64(i))%251) ^ byte(k)
	}
}

// streamOne is one connection of streamLoad. It returns the bytes echoed
// and checked.
func streamOne(addr string, k, size int, d time.Duration) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 60*time.Second))
	stop := time.Now().Add(d)
	sent := make(chan int64, 1)
	werr := make(chan error, 1)
	go func() {
		msg := make([]byte, size)
		var off int64
		var err error
		for time.Now().Before(stop) {
			patternAt(msg, k, off)
			var n int
			n, err = c.Write(msg)
			off += int64(n)
			if err != nil {
				break
			}
		}
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sent <- off
		werr <- err
	}()
	buf := make([]byte, 64<<10)
	want := make([]byte, len(buf))
	var got int64
	var rerr error
	for {
		n, err := c.Read(buf)
		if n > 0 {
			patternAt(want[:n], k, got)
			for i := range n {
				if buf[i] != want[i] {
					rerr = fmt.Errorf("byte %d of the echo is %d, want %d", got+int64(i), buf[i], want[i])
					break
				}
			}
			if rerr != nil {
				break
			}
			got += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if rerr != nil {
		c.Close() // unblocks the writer
	}
	off, err := <-sent, <-werr
	switch {
	case rerr != nil:
		return got, rerr
	case err != nil:
		return got, fmt.Errorf("write: %w", err)
	case got != off:
		return got, fmt.Errorf("short echo: %d bytes came back, %d were sent", got, off)
	}
	return got, nil
}
