// Package testredis runs a real redis-server for tests: on a free
// loopback port, with persistence off, stopped by its PID. Tests that use
// it need redis-server on the PATH; test.sh installs it from Debian when
// it is missing.
package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// startTimeout bounds how long redis-server may take to say it is ready.
const startTimeout = 10 * time.Second

// ErrNotInstalled is wrapped by Start's error when redis-server is not on
// the PATH.
var ErrNotInstalled = errors.New("testredis: redis-server not found (bash test.sh installs it; or apt-get install redis-server)")

// A Server is one redis-server process.
type Server struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// Start starts redis-server on a free port of 127.0.0.1 and returns once
// it accepts connections. It fails if redis-server is missing or does not
// say it is ready within ten seconds.
func Start() (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return StartOn(port)
}

// StartOn starts redis-server on port, as Start does; a test restarts a
// stopped server with it.
func StartOn(port int) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testredis: start: %w", err)
	}
	s := &Server{Port: port, cmd: cmd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		// Read the log until it says it is ready, then drain it so the
		// server never blocks on a full pipe; end with the process.
		sc := bufio.NewScanner(out)
		said := false
		var last string
		for sc.Scan() {
			last = sc.Text()
			if !said && strings.Contains(last, "Ready to accept connections") {
				said = true
				ready <- nil
			}
		}
		io.Copy(io.Discard, out)
		if !said {
			ready <- fmt.Errorf("testredis: redis-server on port %d exited before it was ready: %s", port, last)
		}
		cmd.Wait()
		close(s.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case err := <-ready:
		if err != nil {
			<-s.done
			return nil, err
		}
		return s, nil
	case <-timer.C:
		s.Stop()
		return nil, fmt.Errorf("testredis: redis-server on port %d not ready after %v", port, startTimeout)
	}
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string {
	return fmt.Sprintf("redis://127.0.0.1:%d", s.Port)
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server by its PID (SIGKILL, as a crash) and waits for it
// to exit. Later calls do nothing.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
