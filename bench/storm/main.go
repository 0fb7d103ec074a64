// Command storm is the load of bench/proxymem.sh: many HTTP/1.0
// connections through a relay, a bounded number at once, each asking for
// -path. In mode "burst" each connection reads the whole response and
// closes; in mode "reset" each reads -read bytes, stops reading for -hold
// so that the relay's buffers fill, then resets the connection (close with
// SO_LINGER 0) in the middle of the transfer. It prints one line of JSON.
//
//	usage: storm -addr 127.0.0.1:PORT [-mode burst|reset] [-conns N] [-concurrency N] ...
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Mode        string  `json:"mode"`
	Conns       int     `json:"conns"`
	Concurrency int     `json:"concurrency"`
	OK          int64   `json:"ok"`
	Failed      int64   `json:"failed"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	FirstError  string  `json:"first_error,omitempty"`
}

func main() {
	addr := flag.String("addr", "", "`host:port` of the relay")
	mode := flag.String("mode", "burst", "burst (read to the end) or reset (reset mid-transfer)")
	path := flag.String("path", "/", "`path` to GET")
	conns := flag.Int("conns", 500, "connections in all")
	concurrency := flag.Int("concurrency", 500, "connections open at once")
	read := flag.Int64("read", 256<<10, "reset: `bytes` to read before holding")
	hold := flag.Duration("hold", 300*time.Millisecond, "reset: how long to stop reading before the reset")
	timeout := flag.Duration("timeout", 30*time.Second, "bound on each connection")
	flag.Parse()
	if *addr == "" || (*mode != "burst" && *mode != "reset") || *conns < 1 || *concurrency < 1 {
		fmt.Fprintln(os.Stderr, "storm: need -addr, -mode burst|reset, -conns and -concurrency ≥ 1")
		os.Exit(2)
	}
	res := result{Mode: *mode, Conns: *conns, Concurrency: *concurrency}
	var next, ok, failed, total atomic.Int64
	var errOnce sync.Once
	one := func() {
		n, err := fetch(*addr, *path, *mode == "reset", *read, *hold, *timeout)
		total.Add(n)
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { res.FirstError = err.Error() })
			return
		}
		ok.Add(1)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range min(*concurrency, *conns) {
		wg.Go(func() {
			for next.Add(1) <= int64(*conns) {
				one()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.OK, res.Failed, res.Bytes = ok.Load(), failed.Load(), total.Load()
	json.NewEncoder(os.Stdout).Encode(res)
	if res.OK == 0 {
		os.Exit(1)
	}
}

// fetch makes one request and returns the bytes of the answer it read.
func fetch(addr, path string, reset bool, read int64, hold, timeout time.Duration) (int64, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, err
	}
	tc := c.(*net.TCPConn)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.0\r\nHost: bench\r\n\r\n", path); err != nil {
		return 0, err
	}
	buf := make([]byte, 32<<10)
	if !reset {
		return io.CopyBuffer(io.Discard, struct{ io.Reader }{tc}, buf)
	}
	n, err := io.CopyBuffer(io.Discard, io.LimitReader(tc, read), buf)
	if err != nil {
		return n, err
	}
	if n < read {
		return n, errors.New("answer ended before the reset")
	}
	time.Sleep(hold) // the load's own pacing: the relay fills its buffers meanwhile
	tc.SetLinger(0)
	return n, nil
}
