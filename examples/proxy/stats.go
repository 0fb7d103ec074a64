package main

import (
	"expvar"
	"net"
	"net/http"
	"net/http/pprof"
	"sync/atomic"
	"time"
)

// stats are the proxy's live counters, served as JSON by -stats and
// printed as totals at exit.
type stats struct {
	start time.Time

	open, total, failed atomic.Int64 // connections: now open, accepted, target unreachable
	up, down            atomic.Int64 // bytes client→target, target→client
	pauses              atomic.Int64 // times a side stopped reading for backpressure
	peakHeld            atomic.Int64 // the most bytes a side's output held right after a move
}

func newStats() *stats { return &stats{start: time.Now()} }

// moved counts n bytes relayed, up when they came from the client.
func (s *stats) moved(up bool, n int) {
	if up {
		s.up.Add(int64(n))
	} else {
		s.down.Add(int64(n))
	}
}

// held notes that a side's output holds n bytes right after a move: it
// grows only then, so the largest of these is the peak (OutputLen may
// overcount by what was written since the actor last published, never
// undercount).
func (s *stats) held(n int) {
	for {
		old := s.peakHeld.Load()
		if int64(n) <= old || s.peakHeld.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

// vars returns the counters as an expvar.Map owned by this proxy (none
// is published in expvar's global registry, so tests may run many
// proxies). Its values are expvar.Funcs, read each time the map is
// rendered.
func (s *stats) vars(p *proxy) *expvar.Map {
	m := new(expvar.Map).Init()
	fn := func(f func() any) expvar.Func { return expvar.Func(f) }
	m.Set("listen", fn(func() any { return p.ln.Addr().String() }))
	m.Set("target", fn(func() any { return p.targetAddr }))
	m.Set("uptime_seconds", fn(func() any { return time.Since(s.start).Seconds() }))
	m.Set("connections_open", fn(func() any { return s.open.Load() }))
	m.Set("connections_total", fn(func() any { return s.total.Load() }))
	m.Set("connections_failed", fn(func() any { return s.failed.Load() }))
	m.Set("bytes_client_to_target", fn(func() any { return s.up.Load() }))
	m.Set("bytes_target_to_client", fn(func() any { return s.down.Load() }))
	m.Set("backpressure_pauses", fn(func() any { return s.pauses.Load() }))
	m.Set("output_peak_bytes", fn(func() any { return s.peakHeld.Load() }))
	if g := p.group; g != nil {
		m.Set("group", fn(func() any {
			st := g.Stats()
			return map[string]int64{
				"members":       int64(st.Members),
				"bytes_read":    st.TotalRead,
				"bytes_written": st.TotalWritten,
				"read_limit":    st.ReadLimit,
				"write_limit":   st.WriteLimit,
				"min_share":     st.MinShare,
			}
		}))
		storeVars(m, g)
	}
	return m
}

// handler serves the counters as one JSON object, the way expvar's own
// handler serves its registry, at /debug/vars and /, and the runtime's
// profiles under /debug/pprof/ (go tool pprof http://ADDR/debug/pprof/profile),
// so that what a connection costs can be measured on a running proxy.
func (s *stats) handler(p *proxy) http.Handler {
	m := s.vars(p)
	serve := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write([]byte(m.String() + "\n"))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/vars", serve)
	mux.HandleFunc("GET /{$}", serve)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// statsServer is the -stats HTTP server.
type statsServer struct {
	addr string
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

func startStats(addr string, h http.Handler) (*statsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &statsServer{
		addr: ln.Addr().String(),
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // http.ErrServerClosed after close
	}()
	return s, nil
}

func (s *statsServer) close() {
	s.srv.Close()
	<-s.done
}
