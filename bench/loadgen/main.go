// Command loadgen is the load of bench/echo.sh: it drives a TCP echo
// server on -conns connections in one of three modes and prints one line
// of JSON.
//
//   - stream: per connection one goroutine writes -size byte messages
//     without pause and another reads the echo. Figure: echoed bytes per
//     second in the window. After the window the writers half-close and
//     every byte sent must come back before the server closes.
//   - pingpong: per connection, write -size bytes, read exactly -size
//     bytes back, repeat. Figures: round trips per second in the window,
//     and the median and 99th percentile of their latency.
//   - idle: open -conns connections (64 dialers at once), one -size byte
//     echo on each, print "loadgen: ready N" on standard error, hold them
//     for -duration, then one more echo on each to prove they are alive.
//
// Every echoed byte is checked: connection c sends a pseudo-random pattern
// of its own, so a byte that is lost, changed, repeated, reordered or
// crosses connections is a mismatch. A mismatch, a short echo, a
// connection error or a run past its time budget makes "ok" false and the
// exit status 1. The window starts after -warmup and lasts -duration;
// total_bytes and total_round_trips count the whole run (warm-up and drain
// included), so that a server's CPU time over the run can be divided by
// them.
//
//	usage: loadgen -addr 127.0.0.1:PORT -mode stream|pingpong|idle [-conns N] [-size BYTES] [-duration D] [-warmup D]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result is the line loadgen prints.
type result struct {
	Mode             string  `json:"mode"`
	Conns            int     `json:"conns"`
	Size             int     `json:"size"`
	OK               bool    `json:"ok"`
	Seconds          float64 `json:"seconds"`
	Bytes            int64   `json:"bytes"`
	BytesPerSec      float64 `json:"bytes_per_sec"`
	MiBPerSec        float64 `json:"mib_per_sec"`
	RoundTrips       int64   `json:"round_trips"`
	RoundTripsPerSec float64 `json:"round_trips_per_sec"`
	P50us            float64 `json:"p50_us"`
	P99us            float64 `json:"p99_us"`
	TotalBytes       int64   `json:"total_bytes"`
	TotalRoundTrips  int64   `json:"total_round_trips"`
	Errors           int64   `json:"errors"`
	FirstError       string  `json:"first_error,omitempty"`
}

const (
	// period is the length of a connection's pattern: not a multiple of
	// any message size the scenarios use, so that consecutive messages
	// differ and a lost or repeated one shifts what follows.
	period = 1<<16 + 4099
	// readBuf is what a stream reader asks for per read.
	readBuf = 64 << 10
	// drain bounds the wait for the last echoes after the window.
	drain = 5 * time.Second
	// maxSamples bounds the latencies one connection keeps.
	maxSamples = 1 << 21
	// dialers is how many connections idle mode opens at once.
	dialers = 64
)

// run holds what the connections of one run share.
type run struct {
	addr      string
	size      int
	measuring atomic.Bool
	stop      chan struct{}
	echoed    atomic.Int64 // bytes echoed and checked, whole run
	trips     atomic.Int64 // round trips, whole run
	errs      atomic.Int64
	errOnce   sync.Once
	firstErr  string
	mu        sync.Mutex
	latencies []time.Duration
}

// fail records err as one failed connection.
func (r *run) fail(err error) {
	r.errs.Add(1)
	r.errOnce.Do(func() { r.firstErr = err.Error() })
}

func main() {
	addr := flag.String("addr", "", "`host:port` of the echo server")
	mode := flag.String("mode", "stream", "stream, pingpong or idle")
	conns := flag.Int("conns", 1, "connections")
	size := flag.Int("size", 64, "`bytes` per message")
	duration := flag.Duration("duration", 3*time.Second, "measured window (idle: how long to hold)")
	warmup := flag.Duration("warmup", time.Second, "load before the window (stream, pingpong)")
	flag.Parse()
	if *addr == "" || *conns < 1 || *size < 1 || *size > 1<<20 || *duration <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: need -addr, -conns ≥ 1, 1 ≤ -size ≤ 1 MiB, -duration > 0, -warmup ≥ 0")
		os.Exit(2)
	}
	r := &run{addr: *addr, size: *size, stop: make(chan struct{})}
	res := result{Mode: *mode, Conns: *conns, Size: *size}

	// The watchdog ends a run that overstays its budget, whatever hangs.
	budget := *warmup + *duration + drain + 30*time.Second + time.Duration(*conns)*5*time.Millisecond
	watchdog := time.AfterFunc(budget, func() {
		res.FirstError = fmt.Sprintf("run exceeded its budget of %v", budget)
		json.NewEncoder(os.Stdout).Encode(res)
		os.Exit(1)
	})

	switch *mode {
	case "stream", "pingpong":
		loaded(r, &res, *mode == "stream", *conns, *warmup, *duration)
	case "idle":
		idle(r, &res, *conns, *duration)
	default:
		fmt.Fprintln(os.Stderr, "loadgen: -mode must be stream, pingpong or idle")
		os.Exit(2)
	}
	watchdog.Stop()
	res.TotalBytes, res.TotalRoundTrips = r.echoed.Load(), r.trips.Load()
	res.Errors, res.FirstError = r.errs.Load(), r.firstErr
	res.OK = res.Errors == 0
	json.NewEncoder(os.Stdout).Encode(res)
	if !res.OK {
		os.Exit(1)
	}
}

// pattern returns connection c's pattern: period bytes, then as many again
// as a message or a read may need past the end, so that every slice at an
// offset below period is contiguous.
func pattern(c, extra int) []byte {
	p := make([]byte, period+extra)
	rng := rand.New(rand.NewPCG(0x6265762d6563686f, uint64(c)))
	for i := 0; i < period; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < period; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	copy(p[period:], p[:extra])
	return p
}

// loaded runs stream or pingpong on n connections: warm-up, window, then
// stop and drain.
func loaded(r *run, res *result, stream bool, n int, warmup, duration time.Duration) {
	var cs []*net.TCPConn
	for i := range n {
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			r.fail(fmt.Errorf("dial %d: %w", i, err))
			break
		}
		cs = append(cs, c.(*net.TCPConn))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		c.SetDeadline(time.Now().Add(warmup + duration + drain))
		pat := pattern(i, max(r.size, readBuf))
		wg.Go(func() {
			defer c.Close()
			var err error
			if stream {
				err = r.streamConn(c, pat)
			} else {
				err = r.pingpongConn(c, pat)
			}
			if err != nil {
				r.fail(fmt.Errorf("conn %d: %w", i, err))
			}
		})
	}
	<-time.After(warmup)
	b0, t0 := r.echoed.Load(), r.trips.Load()
	start := time.Now()
	r.measuring.Store(true)
	<-time.After(duration)
	r.measuring.Store(false)
	elapsed := time.Since(start)
	b1, t1 := r.echoed.Load(), r.trips.Load()
	close(r.stop)
	wg.Wait()

	secs := elapsed.Seconds()
	res.Seconds = secs
	res.Bytes, res.RoundTrips = b1-b0, t1-t0
	res.BytesPerSec = float64(res.Bytes) / secs
	res.MiBPerSec = res.BytesPerSec / (1 << 20)
	res.RoundTripsPerSec = float64(res.RoundTrips) / secs
	if lat := r.latencies; len(lat) > 0 {
		slices.Sort(lat)
		res.P50us = float64(lat[len(lat)/2]) / 1e3
		res.P99us = float64(lat[min(len(lat)-1, len(lat)*99/100)]) / 1e3
	}
}

// streamConn writes messages until the run stops, then half-closes; it
// reads and checks the echo until the server closes, and fails if the
// echo is not every byte sent.
func (r *run) streamConn(c *net.TCPConn, pat []byte) error {
	var sent int64
	werr := make(chan error, 1)
	go func() {
		off := 0
		for {
			select {
			case <-r.stop:
				werr <- c.CloseWrite()
				return
			default:
			}
			if _, err := c.Write(pat[off : off+r.size]); err != nil {
				werr <- fmt.Errorf("write: %w", err)
				return
			}
			atomic.AddInt64(&sent, int64(r.size))
			off = (off + r.size) % period
		}
	}()
	var got int64
	buf := make([]byte, readBuf)
	off := 0
	var rerr error
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if !bytes.Equal(buf[:n], pat[off:off+n]) {
				rerr = fmt.Errorf("echo differs from what was sent at byte %d", got+int64(firstDiff(buf[:n], pat[off:off+n])))
				break
			}
			got += int64(n)
			r.echoed.Add(int64(n))
			off = (off + n) % period
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("read: %w", err)
			break
		}
	}
	if rerr != nil {
		c.SetLinger(0)
		c.Close() // unblocks the writer
	}
	if err := <-werr; err != nil && rerr == nil {
		return err
	}
	if rerr != nil {
		return rerr
	}
	if s := atomic.LoadInt64(&sent); got != s {
		return fmt.Errorf("server closed after echoing %d of %d bytes", got, s)
	}
	return nil
}

// pingpongConn makes round trips until the run stops, then half-closes and
// expects the server to close without sending more.
func (r *run) pingpongConn(c *net.TCPConn, pat []byte) error {
	buf := make([]byte, r.size)
	var lat []time.Duration
	defer func() {
		r.mu.Lock()
		r.latencies = append(r.latencies, lat...)
		r.mu.Unlock()
	}()
	off := 0
	for {
		select {
		case <-r.stop:
			if err := c.CloseWrite(); err != nil {
				return err
			}
			if n, err := c.Read(buf); n > 0 || !errors.Is(err, io.EOF) {
				return fmt.Errorf("after the last round trip: %d bytes, %v (want EOF)", n, err)
			}
			return nil
		default:
		}
		msg := pat[off : off+r.size]
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		d := time.Since(t0)
		if !bytes.Equal(buf, msg) {
			return fmt.Errorf("echo differs from what was sent at byte %d of a message", firstDiff(buf, msg))
		}
		if r.measuring.Load() && len(lat) < maxSamples {
			lat = append(lat, d)
		}
		r.echoed.Add(int64(r.size))
		r.trips.Add(1)
		off = (off + r.size) % period
	}
}

// idle opens n connections, echoes one message on each, holds them for
// hold, then echoes a second message on each and closes them.
func idle(r *run, res *result, n int, hold time.Duration) {
	cs := make([]*net.TCPConn, n)
	each(n, func(i int) {
		c, err := net.DialTimeout("tcp", r.addr, 10*time.Second)
		if err != nil {
			r.fail(fmt.Errorf("dial %d: %w", i, err))
			return
		}
		cs[i] = c.(*net.TCPConn)
		if err := r.echoOnce(cs[i], i, 0); err != nil {
			r.fail(fmt.Errorf("conn %d: %w", i, err))
		}
	})
	open := 0
	for _, c := range cs {
		if c != nil {
			open++
		}
	}
	fmt.Fprintf(os.Stderr, "loadgen: ready %d\n", open)
	start := time.Now()
	<-time.After(hold)
	res.Seconds = time.Since(start).Seconds()
	each(n, func(i int) {
		if cs[i] == nil {
			return
		}
		if err := r.echoOnce(cs[i], i, 1); err != nil {
			r.fail(fmt.Errorf("conn %d after holding: %w", i, err))
		}
		cs[i].Close()
	})
}

// echoOnce sends message k of connection i and checks its echo.
func (r *run) echoOnce(c *net.TCPConn, i, k int) error {
	rng := rand.New(rand.NewPCG(uint64(i), uint64(k)))
	msg := make([]byte, r.size)
	for j := range msg {
		msg[j] = byte(rng.Uint32())
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, r.size)
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(buf, msg) {
		return fmt.Errorf("echo differs from what was sent at byte %d", firstDiff(buf, msg))
	}
	r.echoed.Add(int64(r.size))
	r.trips.Add(1)
	return nil
}

// each calls f(0..n-1) on dialers goroutines and returns when all are done.
func each(n int, f func(int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(dialers, n) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// firstDiff returns the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
