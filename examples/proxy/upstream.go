package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxBytes caps what /bytes/ serves: enough to watch a rate limit for a
// while, not enough to fill a disk by a typo.
const maxBytes = 64 << 30

// upstream is the embedded HTTP server the proxy relays to when no
// -target is given, so that it can be tried with curl and nothing else.
type upstream struct {
	addr string
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// startUpstream serves the embedded upstream on 127.0.0.1, on a port the
// system picks.
func startUpstream(log *slog.Logger) (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", hello)
	mux.HandleFunc("GET /bytes/{size}", serveBytes)
	mux.HandleFunc("POST /echo", echo)
	u := &upstream{
		addr: ln.Addr().String(),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(u.done)
		u.srv.Serve(ln) // returns http.ErrServerClosed after close
	}()
	return u, nil
}

// close stops the server, cutting any request still running, and waits
// for it.
func (u *upstream) close() {
	u.srv.Close()
	<-u.done
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, `Hello from the proxy's embedded upstream at %s.
You reached it through the proxy at %s.

Try:
  /bytes/SIZE   SIZE bytes (such as 100MiB) to watch -rate and -group-rate at work
  /echo         POST a body and get it back (curl --data-binary @FILE)
`, r.Context().Value(http.LocalAddrContextKey), r.Host)
}

// serveBytes sends a repeating, position-dependent pattern, so a client
// can check what it got (byte i is i mod 251).
func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := parseBytes(r.PathValue("size"))
	if err != nil || n > maxBytes {
		http.Error(w, fmt.Sprintf("bad size: want up to %s, such as 100MiB", formatBytes(maxBytes)), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	io.Copy(w, io.LimitReader(&pattern{}, n))
}

// pattern reads the endless stream whose byte i is i mod 251, counting
// from where the reader is.
type pattern struct{ off int64 }

func (pr *pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte((pr.off + int64(i)) % 251)
	}
	pr.off += int64(len(p))
	return len(p), nil
}

// echo sends the request body back as it arrives.
func echo(w http.ResponseWriter, r *http.Request) {
	// Without full duplex an HTTP/1 handler may not read the body once it
	// has begun to answer.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, r.Body) // an error means the client went away
}
