package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// apiOps are the requests FuzzAPI sends its body with: every handler that
// reads a body, on a proxy and a toxic that exist and on ones that do not.
var apiOps = []struct{ method, path string }{
	{"POST", "/proxies"},
	{"POST", "/populate"},
	{"POST", "/proxies/base"},
	{"POST", "/proxies/base/toxics"},
	{"POST", "/proxies/base/toxics/lat"},
	{"POST", "/proxies/nosuch/toxics"},
	{"POST", "/proxies/nosuch"},
	{"POST", "/proxies/base/toxics/nosuch"},
}

// confineListen rewrites body so that every proxy it could make listens
// on 127.0.0.1:0: each "listen" field (in any case, as encoding/json
// matches them) whose value normaliseAddr accepts becomes "127.0.0.1:0",
// so that a fuzzed body never binds a fixed port or an address off
// loopback. A body that is not JSON, or has no such field, is returned
// unchanged; one that has is re-encoded (its first JSON value, as decode
// reads it).
func confineListen(body []byte) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return body
	}
	changed := false
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && strings.EqualFold(k, "listen") && s != "127.0.0.1:0" {
					if _, err := normaliseAddr(s); err == nil {
						x[k] = "127.0.0.1:0"
						changed = true
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if !changed {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// apiDo sends one request to a's handler, from loopback, in-process.
func apiDo(a *apiServer, method, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	a.srv.Handler.ServeHTTP(w, r)
	return w
}

// apiState is what GET /proxies and each proxy's toxics answer: the API's
// whole state, as a client sees it.
func apiState(t *testing.T, a *apiServer) string {
	t.Helper()
	w := apiDo(a, "GET", "/proxies", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /proxies: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

// newFuzzAPI returns an API server that does not listen, with the flags'
// defaults and one proxy, "base", disabled (so not listening either), with
// a latency toxic "lat".
func newFuzzAPI(t *testing.T) *apiServer {
	t.Helper()
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(a.close)
	w := apiDo(a, "POST", "/proxies", []byte(`{"name":"base","upstream":"127.0.0.1:9","enabled":false,
		"toxics":[{"name":"lat","type":"latency","attributes":{"latency":10}}]}`))
	if w.Code != http.StatusCreated {
		t.Fatalf("creating base: %d %s", w.Code, w.Body)
	}
	return a
}

// FuzzAPI sends arbitrary bodies to the toxiproxy API's handlers that
// create and change proxies and toxics, in-process (httptest, no API
// socket); a proxy a body makes listens on 127.0.0.1:0 only
// (confineListen), and every one is closed, its goroutines joined, when
// the iteration ends (apiServer.close). It checks: no panic and no 5xx; a
// 4xx answer is toxiproxy's error body with a message and its own status;
// a refused request changes nothing (GET /proxies answers the same before
// and after); an accepted one answers JSON.
func FuzzAPI(f *testing.F) {
	bodies := []string{
		`{"name":"p","upstream":"127.0.0.1:9"}`,
		`{"name":"p","listen":"127.0.0.1:0","upstream":"localhost:6379","enabled":false}`,
		`{"name":"base","upstream":"127.0.0.1:9"}`,
		`{"name":"p","upstream":"127.0.0.1:0"}`,
		`{"name":"p","upstream":"127.0.0.1:9","listen":"bad"}`,
		`{"name":"p","upstream":"127.0.0.1:9","toxics":[{"type":"latency","attributes":{"latency":-1}}]}`,
		`{"name":"p","upstream":"127.0.0.1:9","toxics":[{"name":"t","type":"nosuch"}]}`,
		`[{"name":"a","upstream":"127.0.0.1:9"},{"name":"b","upstream":"127.0.0.1:10"}]`,
		`[{"name":"a","upstream":"127.0.0.1:9"},{"upstream":"127.0.0.1:10"}]`,
		`[{"name":"a","upstream":"127.0.0.1:9"},{"name":"b","upstream":"nope"}]`,
		`[{"name":"a","upstream":"127.0.0.1:9","toxics":[{"name":"t","type":"timeout","stream":"sideways"}]}]`,
		`{"enabled":true}`,
		`{"upstream":"127.0.0.1:99999"}`,
		`{"listen":"127.0.0.1:0","upstream":"127.0.0.1:9","enabled":true}`,
		`{"name":"slow","type":"latency","stream":"upstream","toxicity":0.5,"attributes":{"latency":100,"jitter":10}}`,
		`{"type":"bandwidth","attributes":{"rate":9223372036854775807}}`,
		`{"type":"slicer","attributes":{"average_size":10,"size_variation":20}}`,
		`{"name":"lat","type":"latency"}`,
		`{"type":"latency","attributes":{"latency":1,"nosuch":2}}`,
		`{"type":"latency","toxicity":2}`,
		`{"attributes":{"latency":20},"toxicity":0.25}`,
		`{"attributes":{"latency":"20"}}`,
		`{"toxicity":-1}`,
		`{"toxicity":1e400}`,
		``, `null`, `[]`, `{}`, `"x"`, `{"name":`, `{"name":"p"} trailing`, "{\"name\":\"\xff\xfe\",\"upstream\":\"h:1\"}",
		`{"name":"ü","upstream":"[::1]:80"}`,
	}
	for _, b := range bodies {
		for op := range apiOps {
			f.Add(uint8(op), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		a := newFuzzAPI(t)
		req := apiOps[int(op)%len(apiOps)]
		body = confineListen(body)
		before := apiState(t, a)
		w := apiDo(a, req.method, req.path, body)
		after := apiState(t, a)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.method, req.path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var e apiError
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Message == "" || e.Status != w.Code {
				t.Fatalf("%s %s %q: %d with body %s, want toxiproxy's error with a message", req.method, req.path, body, w.Code, w.Body)
			}
			if before != after {
				t.Fatalf("%s %s %q: refused (%d %s) but the state changed:\nbefore %s\nafter  %s", req.method, req.path, body, w.Code, w.Body, before, after)
			}
			return
		}
		if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q: %d with a body that is not JSON: %s", req.method, req.path, body, w.Code, w.Body)
		}
	})
}

// FuzzConfig feeds arbitrary files to the -config loader (apiServer.load,
// toxiproxy's JSON config), with every address confined to 127.0.0.1:0
// (confineListen): it never panics; a file it refuses makes no proxy and
// says why; one it accepts makes every proxy it names, enabled.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`[{"name":"redis","listen":"127.0.0.1:26379","upstream":"127.0.0.1:6379"}]`,
		`[{"name":"a","listen":"127.0.0.1:0","upstream":"localhost:1","enabled":false},{"name":"b","upstream":"[::1]:2"}]`,
		`[{"name":"a","upstream":"h:1","toxics":[{"type":"latency","attributes":{"latency":100}}]}]`,
		`[{"name":"a","upstream":"h:1","toxics":[{"type":"latency"},{"type":"latency"}]}]`,
		`[{"name":"a","upstream":"h:1"},{"name":"a","upstream":"h:2"}]`,
		`[{"name":"a","upstream":"h:1"},{"name":"b"}]`,
		`[{"name":"a","upstream":"h:99999"}]`,
		`[{"name":"a","upstream":"h:1","listen":"9999999"}]`,
		`{"name":"a"}`, `[]`, `null`, ``, `[null]`, `[{}]`, `[1]`, `[{"name":"a","upstream":"h:1"}] x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseFlags(nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		a := newAPI(cfg, slog.New(slog.DiscardHandler))
		defer a.close()
		data = confineListen(data)
		if err := a.load(data); err != nil {
			if err.Error() == "" {
				t.Fatalf("load(%q): an empty error", data)
			}
			if n := a.names(); len(n) != 0 {
				t.Fatalf("load(%q) = %v, but made %v", data, err, n)
			}
			return
		}
		var list []proxyJSON
		if err := json.Unmarshal(data, &list); err != nil {
			t.Fatalf("load(%q) accepted what is not a list of proxies: %v", data, err)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, in := range list {
			ap, ok := a.proxies[in.Name]
			if !ok || !ap.enabled || ap.p == nil {
				t.Fatalf("load(%q): proxy %q not made and enabled", data, in.Name)
			}
		}
	})
}

// TestNestedToxicDefaults: a toxic given in a proxy's "toxics" (POST
// /proxies, /populate, -config) takes the defaults POST .../toxics gives,
// as toxiproxy's: the downstream stream, a toxicity of 1, and a name of
// its type and stream. It was refused for its empty stream, and without
// one, made with a toxicity of 0: a toxic that never applied.
func TestNestedToxicDefaults(t *testing.T) {
	a := newFuzzAPI(t)
	w := apiDo(a, "POST", "/proxies", []byte(`{"name":"p","upstream":"127.0.0.1:9","enabled":false,
		"toxics":[{"type":"latency","attributes":{"latency":10}}, {"type":"timeout","stream":"upstream","toxicity":0.5}]}`))
	if w.Code != http.StatusCreated {
		t.Fatalf("POST /proxies: %d %s", w.Code, w.Body)
	}
	var got proxyJSON
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, stream string
		toxicity     float64
	}{{"latency_downstream", "downstream", 1}, {"timeout_upstream", "upstream", 0.5}}
	if len(got.Toxics) != len(want) {
		t.Fatalf("toxics %+v, want %d", got.Toxics, len(want))
	}
	for i, w := range want {
		if tj := got.Toxics[i]; tj.Name != w.name || tj.Stream != w.stream || tj.Toxicity != w.toxicity {
			t.Errorf("toxic %d = %s %s %v, want %s %s %v", i, tj.Name, tj.Stream, tj.Toxicity, w.name, w.stream, w.toxicity)
		}
	}
}

// TestPopulateRefusedChangesNothing: a /populate list with a bad entry
// after good ones is refused whole, as toxiproxy refuses one with a
// missing field: the good ones before it were made (and kept) before.
func TestPopulateRefusedChangesNothing(t *testing.T) {
	for _, body := range []string{
		`[{"name":"a","upstream":"127.0.0.1:9"},{"upstream":"127.0.0.1:10"}]`,
		`[{"name":"a","upstream":"127.0.0.1:9"},{"name":"b","upstream":"nope"}]`,
		`[{"name":"a","upstream":"127.0.0.1:9"},{"name":"b","upstream":"h:1","toxics":[{"type":"latency","attributes":{"jitter":-1}}]}]`,
		`[{"name":"base","upstream":"127.0.0.1:10"},{"name":"b","upstream":"h:1","listen":"no"}]`,
	} {
		a := newFuzzAPI(t)
		before := apiState(t, a)
		w := apiDo(a, "POST", "/populate", []byte(body))
		if w.Code != http.StatusBadRequest {
			t.Errorf("populate %s: %d %s, want 400", body, w.Code, w.Body)
		}
		if after := apiState(t, a); after != before {
			t.Errorf("populate %s refused, but the proxies went from %s to %s", body, before, after)
		}
	}
}
