package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignal runs the built program: SIGINT starts the drain,
// which waits for an open connection (-drain-timeout 60s); a second
// SIGINT exits at once with status 130, as a shell reports a process
// ended by SIGINT.
func TestSecondSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := goBuild(t, ctx, ".", "proxy")
	proxy := startProcess(t, ctx, bin, "-listen", "127.0.0.1:0", "-target", echoServer(t), "-drain-timeout", "60s")
	addr := proxy.out.waitFor(t, reListen, time.Minute)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := proxy.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	proxy.errOut.waitFor(t, regexp.MustCompile(`msg="shutting down" .*open=1`), 30*time.Second)
	start := time.Now()
	if err := proxy.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-proxy.exited:
		proxy.exited <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("after a second SIGINT the proxy ended with %v, want exit status 130; stderr:\n%s", err, proxy.errOut)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the second SIGINT took %v to end the proxy, want at once", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the proxy still runs 30 s after a second SIGINT (-drain-timeout 60s); stderr:\n%s", proxy.errOut)
	}
	if !strings.Contains(proxy.errOut.String(), "second interrupt") {
		t.Errorf("stderr does not say why it exited at once:\n%s", proxy.errOut)
	}
}
