package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEcho builds the example, runs it on a free port, checks an echo of
// a small and a large message, and stops it with SIGTERM: it must exit 0.
func TestEcho(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	bin := filepath.Join(t.TempDir(), "echo")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() {
		cmd.Process.Kill()
		for range lines {
		}
		<-exited
	}()
	addr := ""
	deadline := time.After(30 * time.Second)
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the server exited before listening")
			}
			if _, a, found := strings.Cut(line, "addr="); found && strings.Contains(line, "listening") {
				addr = a
			}
		case <-deadline:
			t.Fatal("the server did not say where it listens")
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	for _, size := range []int{5, 1 << 20} {
		msg := bytes.Repeat([]byte("hello"), size/5)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Write(msg)
			errc <- err
		}()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading the echo of %d bytes: %v", len(msg), err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("echo of %d bytes differs", len(msg))
		}
	}
	// A client that half-closes still gets everything back, then EOF.
	c.Write([]byte("bye"))
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(c); string(rest) != "bye" || err != nil {
		t.Errorf("after half-close read %q, %v, want %q, nil", rest, err, "bye")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after SIGTERM")
	}
	exited <- nil // for the deferred cleanup, which waits once more
}

// TestNoTLSLinked pins why TLS sockets live in conn/tlsconn: a plain
// server built on conn does not link crypto/tls, whose package
// initialisation alone costs this program about 2 MiB of resident
// memory at start (docs/benchmarks.md, "Peak RSS").
func TestNoTLSLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "crypto/tls" || pkg == "crypto/x509" {
			t.Errorf("examples/echo links %s; a plain socket server should not", pkg)
		}
	}
}
