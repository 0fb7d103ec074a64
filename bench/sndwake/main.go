//go:build linux

// Command sndwake measures what a writer waiting for room in a full
// loopback TCP send buffer finds when it wakes: it writes 256 KiB at a
// time to a socket whose peer reads 64 KiB at a time, and after each
// EAGAIN waits for writability through the runtime's poller, as bev's
// actor does, then reads the bytes still queued (SIOCOUTQ). It prints
// the throughput, the waits and the queue at the wake. -sndbuf and
// -notsent-lowat set SO_SNDBUF and TCP_NOTSENT_LOWAT on the writer.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"slices"
	"syscall"
	"time"
	"unsafe"
)

const (
	siocoutq        = 0x5411 // SIOCOUTQ (TIOCOUTQ): bytes not yet acknowledged
	tcpNotsentLowat = 25     // TCP_NOTSENT_LOWAT
)

func main() {
	dur := flag.Duration("d", 3*time.Second, "how long to write")
	sndbuf := flag.Int("sndbuf", 0, "SO_SNDBUF of the writer (0: autotuned)")
	lowat := flag.Int("notsent-lowat", 0, "TCP_NOTSENT_LOWAT of the writer (0: unset)")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buf := make([]byte, 64<<10)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	if *sndbuf > 0 {
		if err := tc.SetWriteBuffer(*sndbuf); err != nil {
			log.Fatal(err)
		}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	if *lowat > 0 {
		rc.Control(func(fd uintptr) {
			if err := syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotsentLowat, *lowat); err != nil {
				log.Fatal(err)
			}
		})
	}

	data := make([]byte, 256<<10)
	var waits []time.Duration
	var queued []int
	total := 0
	start := time.Now()
	for time.Since(start) < *dur {
		full := false
		rc.Write(func(fd uintptr) bool {
			n, _, e := syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)))
			switch e {
			case 0:
				total += int(n)
			case syscall.EAGAIN:
				full = true
			default:
				log.Fatal(e)
			}
			return true
		})
		if !full {
			continue
		}
		t0 := time.Now()
		waited := false
		rc.Write(func(fd uintptr) bool {
			if !waited {
				waited = true
				return false // wait for writability
			}
			var q int32
			syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&q)))
			queued = append(queued, int(q))
			return true
		})
		waits = append(waits, time.Since(t0))
	}
	secs := time.Since(start).Seconds()
	c.Close()
	<-readerDone
	peer.Close()
	if len(waits) == 0 {
		fmt.Printf("MiB/s %.0f, no wait\n", float64(total)/secs/(1<<20))
		return
	}
	slices.Sort(waits)
	slices.Sort(queued)
	fmt.Printf("MiB/s %.0f; %d waits, median %v, p90 %v; queued at the wake: median %d KiB, p10 %d, p90 %d\n",
		float64(total)/secs/(1<<20), len(waits), waits[len(waits)/2].Round(time.Microsecond),
		waits[len(waits)*9/10].Round(time.Microsecond),
		queued[len(queued)/2]>>10, queued[len(queued)/10]>>10, queued[len(queued)*9/10]>>10)
}
