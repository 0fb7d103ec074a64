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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testcert"
)

// startTimeout bounds how long redis-server may take to say it is ready.
const startTimeout = 10 * time.Second

// ErrNotInstalled is wrapped by Start's error when redis-server is not on
// the PATH.
var ErrNotInstalled = errors.New("testredis: redis-server not found (bash test.sh installs it; or apt-get install redis-server)")

// A Server is one redis-server process.
type Server struct {
	Port int
	tls  string // directory of the TLS certificate and key; "" without TLS
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
	return start(port, "")
}

// StartTLS starts redis-server as Start does, speaking only TLS with the
// PEM certificate and key given (clients need no certificate); its URL is
// rediss://. The files live in a temporary directory Stop removes.
func StartTLS(certPEM, keyPEM []byte) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testredis-tls")
	if err != nil {
		return nil, err
	}
	for name, b := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	s, err := start(port, dir)
	if err != nil {
		os.RemoveAll(dir)
	}
	return s, err
}

func start(port int, tlsDir string) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"}
	if tlsDir != "" {
		cert := filepath.Join(tlsDir, "cert.pem")
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", cert, "--tls-key-file", filepath.Join(tlsDir, "key.pem"),
			"--tls-ca-cert-file", cert, "--tls-auth-clients", "no")
	}
	cmd := exec.Command(path, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testredis: start: %w", err)
	}
	s := &Server{Port: port, tls: tlsDir, cmd: cmd, done: make(chan struct{})}
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

// URL returns the server's redis:// URL, or rediss:// with TLS.
func (s *Server) URL() string {
	if s.tls != "" {
		return fmt.Sprintf("rediss://127.0.0.1:%d", s.Port)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d", s.Port)
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server by its PID (SIGKILL, as a crash), waits for it to
// exit and removes its TLS files. Later calls do nothing.
func (s *Server) Stop() {
	s.cmd.Process.Kill()
	<-s.done
	if s.tls != "" {
		os.RemoveAll(s.tls)
	}
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

// New starts redis-server as Start does for the test t and stops it when
// the test ends (stopping it earlier is fine). A failure to start fails
// the test with t.Fatal.
func New(t testing.TB) *Server {
	t.Helper()
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// NewTLS starts a redis-server that speaks only TLS (StartTLS) with a
// certificate for 127.0.0.1 made for it, for the test t, and stops it
// when the test ends. It returns the server and the certificate, whose
// CertPEM a client must trust. A failure fails the test with t.Fatal.
func NewTLS(t testing.TB) (*Server, *testcert.Cert) {
	t.Helper()
	cert, err := testcert.New("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartTLS(cert.CertPEM, cert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv, cert
}
