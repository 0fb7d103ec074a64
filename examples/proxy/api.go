package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/netwrap"
	"github.com/bevgo/bev/pipeline/toxic"
)

// apiVersion is what GET /version answers: the toxiproxy API version
// this server speaks.
const apiVersion = "2.5.0"

// apiError is toxiproxy's error body, and an error that carries its
// HTTP status.
type apiError struct {
	Message string `json:"error"`
	Status  int    `json:"status"`
	err     error  // the cause, if any, for errors.Is
}

func (e *apiError) Error() string { return e.Message }

// Unwrap returns the error's cause, or nil.
func (e *apiError) Unwrap() error { return e.err }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Message: fmt.Sprintf(format, args...), Status: status}
}

// proxyJSON is toxiproxy's proxy, as sent and received.
type proxyJSON struct {
	Name     string      `json:"name"`
	Listen   string      `json:"listen"`
	Upstream string      `json:"upstream"`
	Enabled  bool        `json:"enabled"`
	Toxics   []toxicJSON `json:"toxics"`
}

// toxicJSON is toxiproxy's toxic.
type toxicJSON struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Stream     string          `json:"stream"`
	Toxicity   float64         `json:"toxicity"`
	Attributes json.RawMessage `json:"attributes"`
}

// UnmarshalJSON decodes a toxic with toxiproxy's defaults for what it
// does not give: the downstream stream and a toxicity of 1 (its name
// defaults in toxic), wherever the toxic comes: POST .../toxics, or a
// proxy's "toxics" in POST /proxies, /populate and -config. It returns
// encoding/json's error for a body that is not a toxic.
func (tj *toxicJSON) UnmarshalJSON(data []byte) error {
	type plain toxicJSON // without this method
	p := plain{Stream: "downstream", Toxicity: 1}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	*tj = toxicJSON(p)
	return nil
}

// apiProxy is one proxy made through the API: its toxics and, while it
// is enabled, the running proxy that carries them.
type apiProxy struct {
	name, listen, upstream string
	enabled                bool
	set                    *toxic.Set
	p                      *proxy // nil while disabled
}

// apiServer serves toxiproxy's REST API: it makes, changes and removes
// proxies, each a proxy of its own listening on its address, relaying to
// its upstream, with a toxic.Set on every connection.
type apiServer struct {
	cfg         *config // what each proxy is made from: timeouts, logging
	log         *slog.Logger
	allowRemote bool

	srv  *http.Server
	ln   net.Listener
	done chan struct{} // closed when Serve has returned

	// newProxy starts each proxy; nil means the package's newProxy.
	// Tests set it to make a start fail.
	newProxy func(*config, *slog.Logger) (*proxy, error)

	mu      sync.Mutex // guards following
	proxies map[string]*apiProxy
}

// newAPI returns an API server with no proxies that does not listen yet.
func newAPI(cfg *config, log *slog.Logger) *apiServer {
	a := &apiServer{cfg: cfg, log: log, allowRemote: cfg.apiAllowRemote, proxies: make(map[string]*apiProxy)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", a.version)
	mux.HandleFunc("POST /reset", a.reset)
	mux.HandleFunc("GET /proxies", a.proxyIndex)
	mux.HandleFunc("POST /proxies", a.proxyCreate)
	mux.HandleFunc("POST /populate", a.populate)
	mux.HandleFunc("GET /proxies/{proxy}", a.onProxy(a.proxyShow))
	mux.HandleFunc("POST /proxies/{proxy}", a.onProxy(a.proxyUpdate))
	mux.HandleFunc("DELETE /proxies/{proxy}", a.proxyDelete)
	mux.HandleFunc("GET /proxies/{proxy}/toxics", a.onProxy(a.toxicIndex))
	mux.HandleFunc("POST /proxies/{proxy}/toxics", a.toxicCreate)
	mux.HandleFunc("GET /proxies/{proxy}/toxics/{toxic}", a.onProxy(a.toxicShow))
	mux.HandleFunc("POST /proxies/{proxy}/toxics/{toxic}", a.onProxy(a.toxicUpdate))
	mux.HandleFunc("DELETE /proxies/{proxy}/toxics/{toxic}", a.onProxy(a.toxicDelete))
	a.srv = &http.Server{Handler: a.guard(mux), ReadHeaderTimeout: 10 * time.Second}
	return a
}

// startAPI loads -config, if any, and serves the API on -api, if any.
// It returns nil when neither is set.
func startAPI(cfg *config, log *slog.Logger) (*apiServer, error) {
	if cfg.api == "" && cfg.toxiConfig == "" {
		return nil, nil
	}
	a := newAPI(cfg, log)
	if cfg.toxiConfig != "" {
		data, err := os.ReadFile(cfg.toxiConfig)
		if err != nil {
			return nil, fmt.Errorf("-config: %w", err)
		}
		if err := a.load(data); err != nil {
			a.close()
			return nil, fmt.Errorf("-config: %s: %w", cfg.toxiConfig, err)
		}
	}
	if cfg.api != "" {
		ln, err := net.Listen("tcp", cfg.api)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("-api: %w", err)
		}
		a.ln = ln
		a.done = make(chan struct{})
		go func() {
			defer close(a.done)
			a.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on close
		}()
	}
	return a, nil
}

// load makes the proxies of data, a toxiproxy JSON config (a list of
// proxies, as POST /populate takes). It returns the JSON's error, or the
// first bad proxy's, having made none of them.
func (a *apiServer) load(data []byte) error {
	var list []proxyJSON
	if err := json.Unmarshal(data, &list); err != nil {
		return err
	}
	_, err := a.populateList(list)
	return err
}

// addr is the API's listening address, or "" without -api.
func (a *apiServer) addr() string {
	if a == nil || a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// close stops serving and closes every proxy and its connections.
func (a *apiServer) close() {
	if a == nil {
		return
	}
	if a.ln != nil {
		a.srv.Close()
		<-a.done
	}
	a.mu.Lock()
	ps := make([]*apiProxy, 0, len(a.proxies))
	for _, ap := range a.proxies {
		ps = append(ps, ap)
	}
	a.proxies = map[string]*apiProxy{}
	a.mu.Unlock()
	for _, ap := range ps {
		stopProxy(ap.p)
	}
}

// guard refuses clients not on loopback unless -api-allow-remote.
func (a *apiServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowRemote {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				writeError(w, errorf(http.StatusForbidden, "client %s is not on loopback (see -api-allow-remote)", r.RemoteAddr))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, errorf(http.StatusInternalServerError, "encoding the answer: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, "%v", err)
	}
	data, _ := json.Marshal(ae)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	w.Write(data) //nolint:errcheck // the client went away: nothing to do
}

// decode reads one JSON value of at most 1 MiB from r's body into v.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad request body: %v", err)
	}
	return nil
}

func (a *apiServer) version(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	io.WriteString(w, apiVersion) //nolint:errcheck // the client went away
}

// reset enables every proxy and removes every toxic.
func (a *apiServer) reset(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ap := range a.proxies {
		ap.set.Clear()
		if !ap.enabled {
			if err := a.startLocked(ap, ap.listen, ap.upstream); err != nil {
				writeError(w, err)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiServer) proxyIndex(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	out := make(map[string]proxyJSON, len(a.proxies))
	for name, ap := range a.proxies {
		out[name] = ap.json()
	}
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (a *apiServer) proxyCreate(w http.ResponseWriter, r *http.Request) {
	in := proxyJSON{Enabled: true}
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ap, err := a.createLocked(in)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ap.json())
}

// populate creates the proxies of a list, replacing those of the same
// name whose address or upstream differ, as toxiproxy's /populate.
func (a *apiServer) populate(w http.ResponseWriter, r *http.Request) {
	var list []proxyJSON
	if err := decode(r, &list); err != nil {
		writeError(w, err)
		return
	}
	made, err := a.populateList(list)
	out := struct {
		*apiError
		Proxies []proxyJSON `json:"proxies"`
	}{Proxies: made}
	status := http.StatusCreated
	if err != nil {
		if !errors.As(err, &out.apiError) {
			out.apiError = errorf(http.StatusInternalServerError, "%v", err)
		}
		status = out.apiError.Status
	}
	writeJSON(w, status, out)
}

// populateList makes the proxies of list, as populate. A list is
// refused whole, changing nothing: every proxy is checked before any is
// made or replaced, and if one then cannot start (its address in use,
// say), those made before it are closed and those they replaced put back,
// serving as before, their connections untouched. A proxy replaced is
// closed only once the whole list has started. It returns the proxies
// of the list, or none and the error.
func (a *apiServer) populateList(list []proxyJSON) ([]proxyJSON, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	type checked struct {
		listen string
		set    *toxic.Set
	}
	valid := make([]checked, len(list))
	for i, in := range list {
		if in.Name == "" || in.Upstream == "" {
			return []proxyJSON{}, errorf(http.StatusBadRequest, "missing required field: name or upstream at proxy %d", i+1)
		}
		listen, set, err := in.check()
		if err != nil {
			return []proxyJSON{}, errorf(err.Status, "proxy %d: %s", i+1, err.Message)
		}
		valid[i] = checked{listen, set}
	}
	// One step per proxy made: it took name's place from old (nil when
	// there was none), whose listener it closed if paused.
	type step struct {
		old, made *apiProxy
		paused    bool
	}
	var steps []step
	undo := func(err error) error {
		for i := len(steps) - 1; i >= 0; i-- {
			st := steps[i]
			stopProxy(st.made.p)
			if st.old == nil {
				delete(a.proxies, st.made.name)
				continue
			}
			a.proxies[st.old.name] = st.old
			if st.paused {
				if lerr := st.old.p.relisten(); lerr != nil {
					err = a.lostLocked(st.old, err, lerr)
				}
			}
		}
		return err
	}
	made := []proxyJSON{}
	for i, in := range list {
		old := a.proxies[in.Name]
		if old != nil && old.listen == in.Listen && old.upstream == in.Upstream {
			made = append(made, old.json())
			continue
		}
		listen, set := valid[i].listen, valid[i].set
		var running *proxy
		if old != nil {
			running = old.p
		}
		p, paused, err := a.startReplacing(running, in.Name, listen, in.Upstream, set)
		if err != nil {
			if paused { // old could not listen again: it is stopped
				err = a.lostLocked(old, err, nil)
			}
			return []proxyJSON{}, undo(err)
		}
		// A config's proxies start enabled unless they say otherwise;
		// toxiproxy's populate enables them all.
		ap := &apiProxy{name: in.Name, listen: p.ln.Addr().String(), upstream: in.Upstream, enabled: true, set: set, p: p}
		a.proxies[ap.name] = ap
		steps = append(steps, step{old: old, made: ap, paused: paused})
		made = append(made, ap.json())
	}
	for _, st := range steps {
		if st.old != nil {
			stopProxy(st.old.p)
		}
	}
	return made, nil
}

// startReplacing starts a proxy named name on listen, relaying to
// upstream with the toxics of set, to take the place of old, the running
// proxy it replaces (nil when there is none), which is left running. When
// listen is old's address, or refused as in use (old may hold it under
// another name), old stops listening first, its connections going on,
// and paused says so: the caller closes old once the change is made, or
// calls old.relisten to undo it. If the new proxy then does not start
// either, old listens again; if even that fails, startReplacing returns
// the error with paused true and old without a listener.
func (a *apiServer) startReplacing(old *proxy, name, listen, upstream string, set *toxic.Set) (_ *proxy, paused bool, _ error) {
	if old == nil || listen != old.ln.Addr().String() {
		p, err := a.startProxy(name, listen, upstream, set)
		if err == nil || old == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return p, false, err
		}
	}
	old.ln.Close()
	p, err := a.startProxy(name, listen, upstream, set)
	if err == nil {
		return p, true, nil
	}
	if lerr := old.relisten(); lerr != nil {
		return nil, true, fmt.Errorf("%w; and listening again on %s: %v", err, old.ln.Addr(), lerr)
	}
	return nil, false, err
}

// lostLocked stops ap's proxy, which could not listen again after a
// refused change (lerr, or said in err when nil), and marks it disabled,
// as it now is; it returns err saying so, a 500.
func (a *apiServer) lostLocked(ap *apiProxy, err, lerr error) error {
	stopProxy(ap.p)
	ap.p, ap.enabled = nil, false
	msg := fmt.Sprintf("%v; proxy %q disabled", err, ap.name)
	if lerr != nil {
		msg = fmt.Sprintf("%v; proxy %q could not listen again on %s (%v): disabled", err, ap.name, ap.listen, lerr)
	}
	return errorf(http.StatusInternalServerError, "%s", msg)
}

// check checks in, a proxy to make, and returns its address (127.0.0.1:0
// when it has none) and its toxics, or toxiproxy's error.
func (in proxyJSON) check() (listen string, set *toxic.Set, _ *apiError) {
	switch {
	case in.Name == "":
		return "", nil, errorf(http.StatusBadRequest, "missing required field: name")
	case in.Upstream == "":
		return "", nil, errorf(http.StatusBadRequest, "missing required field: upstream")
	}
	if in.Listen == "" {
		in.Listen = "127.0.0.1:0"
	}
	listen, err := normaliseAddr(in.Listen)
	if err != nil {
		return "", nil, errorf(http.StatusBadRequest, "listen: %v", err)
	}
	if _, _, err := splitTarget(in.Upstream); err != nil {
		return "", nil, errorf(http.StatusBadRequest, "upstream: %v", err)
	}
	set = new(toxic.Set)
	for _, tj := range in.Toxics {
		t, err := tj.toxic()
		if err == nil {
			err = toxicError(set.Add(t))
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = errorf(http.StatusBadRequest, "%v", err)
			}
			return "", nil, ae
		}
	}
	return listen, set, nil
}

// createLocked checks in, makes the proxy and starts it if enabled.
func (a *apiServer) createLocked(in proxyJSON) (*apiProxy, error) {
	listen, set, err := in.check()
	if err != nil && (in.Name == "" || in.Upstream == "") {
		return nil, err
	}
	if _, ok := a.proxies[in.Name]; ok {
		return nil, errorf(http.StatusConflict, "proxy already exists")
	}
	if err != nil {
		return nil, err
	}
	ap := &apiProxy{name: in.Name, listen: listen, upstream: in.Upstream, set: set}
	if in.Enabled {
		if err := a.startLocked(ap, ap.listen, ap.upstream); err != nil {
			return nil, err
		}
	}
	a.proxies[ap.name] = ap
	return ap, nil
}

// startLocked starts ap's proxy on listen, relaying to upstream, and
// makes them ap's; the address it got (a port 0 chosen) is kept, so that
// a proxy disabled and enabled again comes back where it was. A proxy
// that does not start changes nothing.
func (a *apiServer) startLocked(ap *apiProxy, listen, upstream string) error {
	p, err := a.startProxy(ap.name, listen, upstream, ap.set)
	if err != nil {
		return err
	}
	ap.p, ap.enabled = p, true
	ap.listen, ap.upstream = p.ln.Addr().String(), upstream
	return nil
}

// startProxy starts the proxy named name on listen, relaying to
// upstream with the toxics of set, with the flags' timeouts and logging.
// It fails with a 400 wrapping newProxy's error (errors.Is sees
// syscall.EADDRINUSE for an address in use).
func (a *apiServer) startProxy(name, listen, upstream string, set *toxic.Set) (*proxy, error) {
	cfg := *a.cfg
	cfg.listen, cfg.target, cfg.stats = listen, upstream, ""
	cfg.api, cfg.toxiConfig = "", ""
	cfg.tlsUpstream, cfg.tlsFilter, cfg.insecure, cfg.tlsCA, cfg.tlsCert, cfg.tlsKey = false, false, false, "", "", ""
	cfg.toxics = set
	start := newProxy
	if a.newProxy != nil {
		start = a.newProxy
	}
	p, err := start(&cfg, a.log.With("proxy", name))
	if err != nil {
		return nil, &apiError{Message: fmt.Sprintf("proxy %q: %v", name, err), Status: http.StatusBadRequest, err: err}
	}
	return p, nil
}

// stopProxy closes p's listener and every connection through it at once.
func stopProxy(p *proxy) {
	if p == nil {
		return
	}
	p.ln.Close()
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.close()
}

func (ap *apiProxy) json() proxyJSON {
	out := proxyJSON{Name: ap.name, Listen: ap.listen, Upstream: ap.upstream, Enabled: ap.enabled, Toxics: []toxicJSON{}}
	for _, t := range ap.set.List() {
		out.Toxics = append(out.Toxics, toxicToJSON(t))
	}
	return out
}

// getLocked returns the proxy named by the request's path.
func (a *apiServer) getLocked(r *http.Request) (*apiProxy, error) {
	ap, ok := a.proxies[r.PathValue("proxy")]
	if !ok {
		return nil, errorf(http.StatusNotFound, "proxy not found")
	}
	return ap, nil
}

// onProxy makes the handler of a request about the proxy its path names:
// under the API's lock, fn gets that proxy (a 404 when there is none) and
// returns the answer's status and JSON body (none with a nil body), or an
// error, which is sent instead.
func (a *apiServer) onProxy(fn func(ap *apiProxy, r *http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		ap, err := a.getLocked(r)
		if err != nil {
			writeError(w, err)
			return
		}
		status, body, err := fn(ap, r)
		switch {
		case err != nil:
			writeError(w, err)
		case body == nil:
			w.WriteHeader(status)
		default:
			writeJSON(w, status, body)
		}
	}
}

// toxicOf returns the toxic of ap named by the request's path.
func toxicOf(ap *apiProxy, r *http.Request) (toxic.Toxic, error) {
	t, ok := ap.set.Get(r.PathValue("toxic"))
	if !ok {
		return t, errorf(http.StatusNotFound, "toxic not found")
	}
	return t, nil
}

func (a *apiServer) proxyShow(ap *apiProxy, _ *http.Request) (int, any, error) {
	return http.StatusOK, ap.json(), nil
}

// proxyUpdate changes a proxy's address, upstream or enabled state; a
// change of address or upstream restarts it, closing its connections.
// An update refused changes nothing: a proxy that cannot start at its
// new address or with its new upstream keeps serving where it was, its
// connections open (startReplacing).
func (a *apiServer) proxyUpdate(ap *apiProxy, r *http.Request) (int, any, error) {
	in := proxyJSON{Listen: ap.listen, Upstream: ap.upstream, Enabled: ap.enabled}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	listen, err := normaliseAddr(in.Listen)
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "listen: %v", err)
	}
	if _, _, err := splitTarget(in.Upstream); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "upstream: %v", err)
	}
	switch {
	case !in.Enabled:
		if ap.enabled {
			stopProxy(ap.p)
			ap.p, ap.enabled = nil, false
		}
		ap.listen, ap.upstream = listen, in.Upstream
	case !ap.enabled:
		if err := a.startLocked(ap, listen, in.Upstream); err != nil {
			return 0, nil, err
		}
	case listen != ap.listen || in.Upstream != ap.upstream:
		p, paused, err := a.startReplacing(ap.p, ap.name, listen, in.Upstream, ap.set)
		if err != nil {
			if paused {
				err = a.lostLocked(ap, err, nil)
			}
			return 0, nil, err
		}
		stopProxy(ap.p)
		ap.p, ap.listen, ap.upstream = p, p.ln.Addr().String(), in.Upstream
	}
	return http.StatusOK, ap.json(), nil
}

// proxyDelete removes the proxy and closes it and its connections, outside
// the API's lock.
func (a *apiServer) proxyDelete(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	ap, err := a.getLocked(r)
	if err == nil {
		delete(a.proxies, ap.name)
	}
	a.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	stopProxy(ap.p)
	w.WriteHeader(http.StatusNoContent)
}

func (a *apiServer) toxicIndex(ap *apiProxy, _ *http.Request) (int, any, error) {
	return http.StatusOK, ap.json().Toxics, nil
}

// toxicCreate reads the toxic before it looks for the proxy, so that a bad
// body is a 400 whatever the path.
func (a *apiServer) toxicCreate(w http.ResponseWriter, r *http.Request) {
	var in toxicJSON // UnmarshalJSON gives toxiproxy's defaults, to a body of null too
	if err := decode(r, &in); err != nil {
		writeError(w, err)
		return
	}
	a.onProxy(func(ap *apiProxy, _ *http.Request) (int, any, error) {
		t, err := in.toxic()
		if err != nil {
			return 0, nil, err
		}
		if err := ap.set.Add(t); err != nil {
			return 0, nil, toxicError(err)
		}
		return http.StatusOK, toxicToJSON(t), nil
	})(w, r)
}

func (a *apiServer) toxicShow(ap *apiProxy, r *http.Request) (int, any, error) {
	t, err := toxicOf(ap, r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, toxicToJSON(t), nil
}

// toxicUpdate takes new attributes (those not given keep their values)
// and, if given, a new toxicity.
func (a *apiServer) toxicUpdate(ap *apiProxy, r *http.Request) (int, any, error) {
	t, err := toxicOf(ap, r)
	if err != nil {
		return 0, nil, err
	}
	cur := toxicToJSON(t)
	in := struct {
		Attributes json.RawMessage `json:"attributes"`
		Toxicity   *float64        `json:"toxicity"`
	}{}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	kind, _ := toxic.NewKind(cur.Type)
	json.Unmarshal(cur.Attributes, kind) //nolint:errcheck // our own encoding
	if err := decodeAttributes(in.Attributes, kind); err != nil {
		return 0, nil, err
	}
	t.Kind = kind
	if in.Toxicity != nil {
		t.Toxicity = *in.Toxicity
	}
	if err := ap.set.Update(t); err != nil {
		return 0, nil, toxicError(err)
	}
	return http.StatusOK, toxicToJSON(t), nil
}

func (a *apiServer) toxicDelete(ap *apiProxy, r *http.Request) (int, any, error) {
	if err := ap.set.Remove(r.PathValue("toxic")); err != nil {
		return 0, nil, toxicError(err)
	}
	return http.StatusNoContent, nil, nil
}

// toxic checks tj and turns it into a toxic.Toxic, named as toxiproxy
// names a toxic without a name: its type and stream ("latency_downstream").
func (tj toxicJSON) toxic() (toxic.Toxic, error) {
	if tj.Name == "" {
		tj.Name = tj.Type + "_" + tj.Stream
	}
	s, err := toxic.ParseStream(tj.Stream)
	if err != nil {
		return toxic.Toxic{}, errorf(http.StatusBadRequest, "stream was invalid, can be either upstream or downstream: %q", tj.Stream)
	}
	kind, err := toxic.NewKind(tj.Type)
	if err != nil {
		return toxic.Toxic{}, errorf(http.StatusBadRequest, "invalid toxic type: %q", tj.Type)
	}
	if err := decodeAttributes(tj.Attributes, kind); err != nil {
		return toxic.Toxic{}, err
	}
	t := toxic.Toxic{Name: tj.Name, Stream: s, Toxicity: tj.Toxicity, Kind: kind}
	if err := t.Validate(); err != nil {
		return toxic.Toxic{}, toxicError(err)
	}
	return t, nil
}

// decodeAttributes decodes raw (absent or null: nothing) into kind,
// refusing attributes the type does not have.
func decodeAttributes(raw json.RawMessage, kind toxic.Kind) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(kind); err != nil {
		return errorf(http.StatusBadRequest, "bad attributes for %s: %v", kind.Type(), err)
	}
	return nil
}

// toxicError maps the toxic package's errors to toxiproxy's statuses.
func toxicError(err error) error {
	switch {
	case errors.Is(err, toxic.ErrExists):
		return errorf(http.StatusConflict, "toxic already exists")
	case errors.Is(err, toxic.ErrNotFound):
		return errorf(http.StatusNotFound, "toxic not found")
	case errors.Is(err, toxic.ErrInvalid):
		return errorf(http.StatusBadRequest, "%v", err)
	}
	return err
}

func toxicToJSON(t toxic.Toxic) toxicJSON {
	attrs, _ := json.Marshal(t.Kind)
	return toxicJSON{Name: t.Name, Type: t.Kind.Type(), Stream: t.Stream.String(), Toxicity: t.Toxicity, Attributes: attrs}
}

// names lists the API's proxies, sorted; for the greeting.
func (a *apiServer) names() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.proxies))
	for n := range a.proxies {
		out = append(out, n)
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// greet prints where the API listens and the proxies -config made.
func (a *apiServer) greet(w io.Writer) {
	if a == nil {
		return
	}
	if addr := a.addr(); addr != "" {
		fmt.Fprintf(w, "proxy: toxiproxy API on http://%s\n", addr)
	}
	for _, n := range a.names() {
		a.mu.Lock()
		ap := a.proxies[n]
		line := fmt.Sprintf("proxy: %s listening on %s, relaying to %s", n, ap.listen, ap.upstream)
		a.mu.Unlock()
		fmt.Fprintln(w, line)
	}
}

// toxicStages makes the toxic stages of one accepted client socket
// (conn.ListenerConfig.Stages): what the client sends passes the Upstream
// toxics, what it receives the Downstream ones, in the socket's own actor,
// with no filter between it and the relay. accept takes them
// (claimStages) and binds them (poison).
func (p *proxy) toxicStages() (in, out actor.Stage) {
	i, o := p.cfg.toxics.NewStages(p.base.Clock(), toxic.Upstream)
	p.staged = [2]*toxic.Stage{i, o}
	return i, o
}

// claimStages takes the stages toxicStages made for cs, so that
// unpoison closes them when cs is closed; poison binds them.
func (p *proxy) claimStages(cs *conn.Socket) {
	in, out := p.staged[0], p.staged[1]
	p.staged = [2]*toxic.Stage{}
	if in != nil {
		p.poisoned.Store(cs.Bufferevent, [2]*toxic.Stage{in, out})
	}
}

// poison binds the stages claimStages took for cs, r's client, to it, so
// that their timers wake it and a toxic can end its connection; then r's
// target connection ends too (toxicEnded). accept calls it once r's
// target is made and before cs starts, so the client's goroutine, on
// which toxicEnded runs, sees the target. It does nothing without -api.
func (p *proxy) poison(cs *conn.Socket, r *relay) {
	if p.cfg.toxics == nil {
		return
	}
	if v, ok := p.poisoned.Load(cs.Bufferevent); ok {
		st := v.([2]*toxic.Stage)
		toxic.BindFunc(cs.Bufferevent, st[0], st[1], r.toxicEnded)
	}
}

// toxicEnded ends r's target connection once a toxic has ended the
// client's, as toxiproxy closes both sockets: after a reset_peer the
// target is reset as well (resetTarget); after a close (timeout,
// limit_data) its stream counts as ended, so that the relay's end drains
// it: what it holds is written, then it is half-closed and closed, and
// what it still sends is not relayed. It runs on the client's goroutine
// (see poison); a client whose target could not be made has nothing to
// end.
func (r *relay) toxicEnded(reset bool) {
	t := &r.target
	if reset {
		r.setCause(fmt.Errorf("client: %w", toxic.ErrReset))
	} else {
		r.setCause(fmt.Errorf("client: %w", toxic.ErrClosed))
	}
	if t.b == nil {
		return
	}
	if reset {
		// The client's own error event, which the reset's ErrReset
		// raises next, pokes the relay.
		r.resetTarget()
		return
	}
	t.ended.Store(true)
	r.poke()
}

// resetTarget makes r's target end with a reset. It sets SO_LINGER 0 on
// the target's socket, so that whatever closes it next (the relay's end)
// sends an RST, and marks the target failed; it closes nothing itself,
// so that it never waits for the target's goroutine from a callback (see
// toxicEnded). A target still connecting has no socket yet: reset tells
// its Connected event to do the same (onEvent), and the relay does not
// end before (poke), so that no connect the server has accepted is
// closed with a FIN instead. Whichever of the two comes second sees the
// other's store (both atomic), so the reset is applied once or twice,
// never lost. It runs on the client's goroutine.
func (r *relay) resetTarget() {
	t := &r.target
	t.reset.Store(true)
	if netwrap.LingerZero(t.b.Conn()) {
		t.failed.Store(true)
		t.ended.Store(true)
	}
}

// resetConnected is the target's Connected event after resetTarget: it
// applies the reset resetTarget could not, and lets the relay end. It
// runs on the target's goroutine.
func (r *relay) resetConnected(x *side, s *actor.Session) {
	netwrap.LingerZero(s.Bufferevent().Conn())
	s.Disable(actor.Read)
	x.failed.Store(true)
	x.ended.Store(true)
	r.poke()
}

// unpoison closes the toxic stages of a client whose socket is closed:
// their timers stop and their Set forgets them.
func (p *proxy) unpoison(b *actor.Bufferevent) {
	if v, ok := p.poisoned.LoadAndDelete(b); ok {
		st := v.([2]*toxic.Stage)
		st[0].Close()
		st[1].Close()
	}
}
