//go:build linux

// Command sndwake measures what a writer waiting for room in a full
// loopback TCP send buffer finds when it wakes: it writes 256 KiB at a
// time to a socket whose peer reads 64 KiB at a time (on a goroutine of
// this process), and after each EAGAIN waits for writability through the
// runtime's poller, as bev's actor does, then reads the bytes still
// queued (SIOCOUTQ). It prints the throughput, the waits and the queue at
// the wake. -sndbuf and -notsent-lowat set SO_SNDBUF and
// TCP_NOTSENT_LOWAT on the writer.
//
// The kernel signals room when the queue falls to two thirds of the
// buffer. Two flags show who is late when the wake finds the queue
// empty: -wait epoll waits in a private level-triggered epoll on a
// blocked thread instead of the runtime's poller, and -kick makes the
// reader ready a helper goroutine after each read while the writer
// waits, which starts an idle thread that then polls.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"slices"
	"sync/atomic"
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
	wait := flag.String("wait", "poller", "how the writer waits for room: poller (the runtime's) or epoll (its own, on a blocked thread)")
	kick := flag.Bool("kick", false, "after each read while the writer waits, ready a helper goroutine")
	flag.Parse()
	if *wait != "poller" && *wait != "epoll" {
		log.Fatalf("-wait %q: want poller or epoll", *wait)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	// The reader, and with -kick the helper it readies: readying a
	// goroutine while a processor is idle starts a thread there, which,
	// finding nothing else to do, waits in the poller. Without it no
	// thread polls while the reader runs and the writer waits.
	var waiting atomic.Bool
	kicks := make(chan struct{}, 1)
	helperDone := make(chan struct{})
	go func() {
		defer close(helperDone)
		for range kicks {
		}
	}()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(kicks)
		buf := make([]byte, 64<<10)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
			if *kick && waiting.Load() {
				select {
				case kicks <- struct{}{}:
				default:
				}
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
		waiting.Store(true)
		if *wait == "epoll" {
			rc.Control(func(fd uintptr) { queued = append(queued, waitInEpoll(int(fd))) })
		} else {
			waited := false
			rc.Write(func(fd uintptr) bool {
				if !waited {
					waited = true
					return false // wait for writability
				}
				queued = append(queued, outq(int(fd)))
				return true
			})
		}
		waiting.Store(false)
		waits = append(waits, time.Since(t0))
	}
	secs := time.Since(start).Seconds()
	c.Close()
	<-readerDone
	<-helperDone
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

// outq returns the bytes in fd's send queue not yet acknowledged.
func outq(fd int) int {
	var q int32
	syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), siocoutq, uintptr(unsafe.Pointer(&q)))
	return int(q)
}

// waitInEpoll waits for fd to be writable in an epoll instance of its
// own, level-triggered, blocking this thread, and returns the queue then.
func waitInEpoll(fd int) int {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	defer syscall.Close(ep)
	ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(fd)}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		log.Fatal(err)
	}
	var evs [1]syscall.EpollEvent
	for {
		n, err := syscall.EpollWait(ep, evs[:], 1000)
		if err == syscall.EINTR || n == 0 {
			continue
		}
		if err != nil {
			log.Fatal(err)
		}
		return outq(fd)
	}
}
