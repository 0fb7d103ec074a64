package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/bevgo/bev/internal/testconn"
)

var reAPI = regexp.MustCompile(`toxiproxy API on http://(127\.0\.0\.1:\d+)`)

// startAPIProxy runs the program with -api on a free port and returns the
// API's address. The toxiproxy client uses http.DefaultClient: its idle
// connections are closed at cleanup.
func startAPIProxy(t *testing.T, args ...string) (*running, string) {
	t.Helper()
	r := startProxy(t, append([]string{"-api", "127.0.0.1:0"}, args...)...)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	return r, r.out.waitFor(t, reAPI, 10*time.Second)
}

// roundTrip writes msg to c and reads as many bytes back, returning the
// time it took.
func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echo differs")
	}
	return time.Since(start)
}

// fastestRoundTrip returns the fastest of three round trips of msg on c:
// a check that no toxic delays c any more, which a live latency toxic
// would fail on every one, and a loaded machine on one at most.
func fastestRoundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	d := roundTrip(t, c, msg)
	for range 2 {
		d = min(d, roundTrip(t, c, msg))
	}
	return d
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// TestToxiproxyClient drives the proxy with toxiproxy's own Go client and
// checks each toxic's effect on the wire.
func TestToxiproxyClient(t *testing.T) {
	_, api := startAPIProxy(t)
	echo := echoServer(t)
	// snippet:toxiproxy-client
	cl := toxiproxy.NewClient(api) // "127.0.0.1:8474" with -api 127.0.0.1:8474
	px, err := cl.CreateProxy("echo", "127.0.0.1:0", echo)
	if err != nil {
		t.Fatal(err)
	}
	// snippet:end
	if !strings.HasPrefix(px.Listen, "127.0.0.1:") || strings.HasSuffix(px.Listen, ":0") || !px.Enabled {
		t.Fatalf("created proxy %+v: want its real address, enabled", px)
	}
	if _, err := cl.CreateProxy("echo", "127.0.0.1:0", echo); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("duplicate CreateProxy: %v, want HTTP 409", err)
	}
	all, err := cl.Proxies()
	if err != nil || len(all) != 1 || all["echo"].Upstream != echo {
		t.Fatalf("Proxies() = %v, %v", all, err)
	}

	// An open connection picks up a toxic on its next chunk.
	c := dial(t, px.Listen)
	base := roundTrip(t, c, []byte("ping"))
	// snippet:toxiproxy-add
	if _, err := px.AddToxic("lat", "latency", "downstream", 1, toxiproxy.Attributes{"latency": 100}); err != nil {
		t.Fatal(err)
	}
	// snippet:end
	if d := roundTrip(t, c, []byte("ping")); d < 100*time.Millisecond || d > 100*time.Millisecond+base+time.Second {
		t.Errorf("round trip with a 100 ms latency took %v (without: %v)", d, base)
	}
	if _, err := px.UpdateToxic("lat", -1, toxiproxy.Attributes{"latency": 200}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, []byte("ping")); d < 200*time.Millisecond {
		t.Errorf("round trip after the update to 200 ms took %v", d)
	}
	toxics, err := px.Toxics()
	if err != nil || len(toxics) != 1 || toxics[0].Attributes["latency"] != float64(200) || toxics[0].Stream != "downstream" {
		t.Fatalf("Toxics() = %+v, %v", toxics, err)
	}
	// A 0 ms latency upstream passes bytes as if it were not there (the
	// client's stage skips it, see toxic.Stage.Passes); updated to 100 ms
	// it delays the next chunk, and back to 0 it delays nothing more.
	if _, err := px.AddToxic("up", "latency", "upstream", 1, toxiproxy.Attributes{"latency": 0}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, []byte("ping")); d < 200*time.Millisecond || d > 200*time.Millisecond+base+time.Second {
		t.Errorf("round trip with 200 ms down, 0 ms up took %v", d)
	}
	if _, err := px.UpdateToxic("up", -1, toxiproxy.Attributes{"latency": 100}); err != nil {
		t.Fatal(err)
	}
	if d := roundTrip(t, c, []byte("ping")); d < 300*time.Millisecond {
		t.Errorf("round trip after the update to 100 ms up took %v", d)
	}
	must(t, px.RemoveToxic("lat"))
	if _, err := px.UpdateToxic("up", -1, toxiproxy.Attributes{"latency": 0}); err != nil {
		t.Fatal(err)
	}
	if d := fastestRoundTrip(t, c, []byte("ping")); d >= 100*time.Millisecond {
		t.Errorf("round trip with 0 ms up took %v", d)
	}
	if err := px.RemoveToxic("up"); err != nil {
		t.Fatal(err)
	}
	if d := fastestRoundTrip(t, c, []byte("ping")); d >= 100*time.Millisecond {
		t.Errorf("round trip after removal took %v", d)
	}

	// bandwidth: 1000 KB/s moves 500,000 bytes in about half a second.
	if _, err := px.AddToxic("bw", "bandwidth", "downstream", 1, toxiproxy.Attributes{"rate": 1000}); err != nil {
		t.Fatal(err)
	}
	bw := dial(t, px.Listen)
	msg := bytes.Repeat([]byte("b"), 500_000)
	start := time.Now()
	got, rerr, werr := sendAndReadBack(bw, msg)
	took := time.Since(start)
	if rerr != nil || werr != nil || len(got) != len(msg) {
		t.Fatalf("through bandwidth: %d bytes, %v, %v", len(got), rerr, werr)
	}
	if took < 390*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("500,000 bytes at 1000 KB/s took %v, want about 500ms", took)
	}
	must(t, px.RemoveToxic("bw"))

	// limit_data cuts at exactly N bytes.
	if _, err := px.AddToxic("lim", "limit_data", "downstream", 1, toxiproxy.Attributes{"bytes": 1000}); err != nil {
		t.Fatal(err)
	}
	lim := dial(t, px.Listen)
	got, rerr, _ = sendAndReadBack(lim, bytes.Repeat([]byte("l"), 5000))
	if len(got) != 1000 {
		t.Errorf("through limit_data 1000: %d bytes (%v)", len(got), rerr)
	}
	must(t, px.RemoveToxic("lim"))

	// reset_peer: the client sees ECONNRESET.
	if _, err := px.AddToxic("rst", "reset_peer", "upstream", 1, toxiproxy.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	rc := dial(t, px.Listen)
	rc.Write([]byte("hello"))
	if _, err := io.ReadAll(rc); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read through reset_peer: %v, want ECONNRESET", err)
	}

	// Disable refuses connections; reset enables again and clears toxics.
	if err := px.Disable(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", px.Listen, 5*time.Second); err == nil {
		c.Close()
		t.Errorf("dial to a disabled proxy succeeded")
	}
	if err := cl.ResetState(); err != nil {
		t.Fatal(err)
	}
	px2, err := cl.Proxy("echo")
	if err != nil || !px2.Enabled || len(px2.ActiveToxics) != 0 || px2.Listen != px.Listen {
		t.Fatalf("after reset: %+v, %v; want enabled at %s, no toxics", px2, err, px.Listen)
	}
	roundTrip(t, dial(t, px.Listen), []byte("again"))
	if err := px2.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Proxy("echo"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Proxy after Delete: %v, want HTTP 404", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAPIErrors checks that every bad field gets a clear 400 (or
// toxiproxy's 404 and 409) with toxiproxy's error body.
func TestAPIErrors(t *testing.T) {
	_, api := startAPIProxy(t)
	echo := echoServer(t)
	busy := testconn.Listen(t)
	post := func(path, body string) (int, string) {
		resp, err := http.Post("http://"+api+path, "application/json", strings.NewReader(body))
		must(t, err)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	code, body := post("/proxies", fmt.Sprintf(`{"name":"p","upstream":%q}`, echo))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	for _, tc := range []struct {
		name, path, body string
		code             int
		says             string
	}{
		{"negative latency", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":-1}}`, 400, "negative"},
		{"unknown type", "/proxies/p/toxics", `{"type":"nope"}`, 400, "invalid toxic type"},
		{"bad stream", "/proxies/p/toxics", `{"type":"latency","stream":"sideways"}`, 400, "stream"},
		{"unknown attribute", "/proxies/p/toxics", `{"type":"latency","attributes":{"latnecy":5}}`, 400, "latnecy"},
		{"toxicity", "/proxies/p/toxics", `{"type":"latency","toxicity":2}`, 400, "toxicity"},
		{"bad JSON", "/proxies/p/toxics", `{`, 400, "bad request body"},
		{"slicer", "/proxies/p/toxics", `{"type":"slicer","attributes":{"average_size":0}}`, 400, "average_size"},
		{"first toxic", "/proxies/p/toxics", `{"name":"t","type":"latency"}`, 200, `"name":"t"`},
		{"duplicate toxic", "/proxies/p/toxics", `{"name":"t","type":"latency"}`, 409, "toxic already exists"},
		{"unknown proxy", "/proxies/q/toxics", `{"type":"latency"}`, 404, "proxy not found"},
		{"unknown toxic", "/proxies/p/toxics/u", `{"attributes":{}}`, 404, "toxic not found"},
		{"update negative", "/proxies/p/toxics/t", `{"attributes":{"jitter":-5}}`, 400, "negative"},
		{"duplicate proxy", "/proxies", fmt.Sprintf(`{"name":"p","upstream":%q}`, echo), 409, "proxy already exists"},
		{"no name", "/proxies", `{"upstream":"127.0.0.1:1"}`, 400, "name"},
		{"no upstream", "/proxies", `{"name":"x"}`, 400, "upstream"},
		{"bad upstream", "/proxies", `{"name":"x","upstream":"nowhere"}`, 400, "upstream"},
		{"listen in use", "/proxies", fmt.Sprintf(`{"name":"x","listen":%q,"upstream":%q}`, busy.Addr(), echo), 400, "address already in use"},
	} {
		code, body := post(tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.name, code, body, tc.code, tc.says)
		}
		if code >= 400 {
			var e apiError
			if json.Unmarshal([]byte(body), &e) != nil || e.Status != code {
				t.Errorf("%s: body %s is not toxiproxy's error", tc.name, body)
			}
		}
	}
	resp, err := http.Get("http://" + api + "/version")
	must(t, err)
	v, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(v) != apiVersion {
		t.Errorf("GET /version = %q", v)
	}
}

// TestAPIRefusesRemote: a client off loopback gets 403 unless
// -api-allow-remote.
func TestAPIRefusesRemote(t *testing.T) {
	for _, allow := range []bool{false, true} {
		a := newAPI(&config{apiAllowRemote: allow}, slog.New(slog.DiscardHandler))
		for _, from := range []string{"192.0.2.7:4000", "127.0.0.1:4000", "[::1]:4000"} {
			req := httptest.NewRequest("GET", "/proxies", nil)
			req.RemoteAddr = from
			w := httptest.NewRecorder()
			a.srv.Handler.ServeHTTP(w, req)
			want := http.StatusOK
			if !allow && from == "192.0.2.7:4000" {
				want = http.StatusForbidden
			}
			if w.Code != want {
				t.Errorf("allow %v, from %s: %d, want %d", allow, from, w.Code, want)
			}
		}
	}
}

// TestConfigFile: -config makes toxiproxy's config's proxies at start.
func TestConfigFile(t *testing.T) {
	echo := echoServer(t)
	file := filepath.Join(t.TempDir(), "toxiproxy.json")
	cfg := fmt.Sprintf(`[{"name":"from-file","listen":"127.0.0.1:0","upstream":%q}]`, echo)
	must(t, os.WriteFile(file, []byte(cfg), 0o600))
	r, api := startAPIProxy(t, "-config", file)
	addr := r.out.waitFor(t, regexp.MustCompile(`from-file listening on (127\.0\.0\.1:\d+)`), 10*time.Second)
	roundTrip(t, dial(t, addr), []byte("hi"))
	px, err := toxiproxy.NewClient(api).Proxy("from-file")
	if err != nil || px.Listen != addr {
		t.Fatalf("Proxy(from-file) = %+v, %v", px, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	must(t, os.WriteFile(bad, []byte(`[{"name":"x"}]`), 0o600))
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"-listen", "127.0.0.1:0", "-config", bad}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "upstream") {
		t.Errorf("bad config: exit %d, %q", code, errOut.String())
	}
}

// acceptor returns the address of a server that hands each connection it
// accepts to the test (accept waits 10 s at most); the connections are
// closed when the test ends.
func acceptor(t *testing.T) (addr string, accept func() net.Conn) {
	t.Helper()
	ln := testconn.Listen(t)
	conns := make(chan net.Conn, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(conns)
		for c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() net.Conn {
		t.Helper()
		select {
		case c := <-conns:
			t.Cleanup(func() { c.Close() })
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("the proxy did not connect to the server")
			return nil
		}
	}
}

// readEnd reads c until its end (10 s at most) and returns how many
// bytes came and the error: nil for EOF.
func readEnd(c net.Conn) (int, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	return int(n), err
}

// TestToxiproxyClosing checks, with toxiproxy's client, that the toxics
// that end a stream end the whole connection as toxiproxy's do (which
// close both sockets): the client and the server each see EOF after what
// passed before, or, after reset_peer, both see a reset; removing a
// timeout toxic closes the connection (toxiproxy's Cleanup); slow_close
// holds the close of its stream back. The server never closes its side
// unless the case says so.
func TestToxiproxyClosing(t *testing.T) {
	_, api := startAPIProxy(t)
	srv, accept := acceptor(t)
	px, err := toxiproxy.NewClient(api).CreateProxy("closing", "127.0.0.1:0", srv)
	must(t, err)
	type ends struct{ client, server error }
	eof := ends{}
	reset := ends{syscall.ECONNRESET, syscall.ECONNRESET}
	for _, tc := range []struct {
		name, typ, stream string
		attrs             toxiproxy.Attributes
		fromClient        int // bytes the client writes
		fromServer        int // bytes the server writes
		serverCloses      bool
		remove            bool // the toxic is removed once the bytes are sent
		atServer          int  // bytes the server reads before its end
		atClient          int  // bytes the client reads before its end
		want              ends
		after             time.Duration // the client's end comes no sooner
		// afterDial: after counts from before the client dials, not from
		// the server's accept. A timeout's timer starts when the
		// client's stage first runs, as the proxy accepts the client and
		// before it dials the server, so it may run ahead of the
		// server's accept by as long as the dial takes (3 ms seen under
		// -race); the dial's start comes before the proxy's accept.
		afterDial bool
	}{
		{name: "limit_data upstream", typ: "limit_data", stream: "upstream", attrs: toxiproxy.Attributes{"bytes": 1000},
			fromClient: 5000, atServer: 1000, want: eof},
		{name: "limit_data downstream", typ: "limit_data", stream: "downstream", attrs: toxiproxy.Attributes{"bytes": 1000},
			fromServer: 5000, atClient: 1000, want: eof},
		{name: "timeout upstream", typ: "timeout", stream: "upstream", attrs: toxiproxy.Attributes{"timeout": 100},
			fromClient: 10, want: eof, after: 100 * time.Millisecond, afterDial: true},
		{name: "timeout downstream", typ: "timeout", stream: "downstream", attrs: toxiproxy.Attributes{"timeout": 100},
			fromServer: 10, want: eof, after: 100 * time.Millisecond, afterDial: true},
		{name: "timeout 0 removed", typ: "timeout", stream: "downstream", attrs: toxiproxy.Attributes{"timeout": 0},
			fromServer: 10, remove: true, want: eof},
		{name: "timeout 0 removed idle", typ: "timeout", stream: "downstream", attrs: toxiproxy.Attributes{"timeout": 0},
			remove: true, want: eof},
		{name: "reset_peer upstream", typ: "reset_peer", stream: "upstream", attrs: toxiproxy.Attributes{"timeout": 0},
			fromClient: 10, want: reset},
		{name: "reset_peer downstream", typ: "reset_peer", stream: "downstream", attrs: toxiproxy.Attributes{"timeout": 50},
			fromServer: 10, want: reset, after: 50 * time.Millisecond},
		{name: "slow_close downstream", typ: "slow_close", stream: "downstream", attrs: toxiproxy.Attributes{"delay": 200},
			fromServer: 10, serverCloses: true, atClient: 10, want: eof, after: 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := px.AddToxic("x", tc.typ, tc.stream, 1, tc.attrs)
			must(t, err)
			defer func() {
				if !tc.remove {
					must(t, px.RemoveToxic("x"))
				}
			}()
			dialed := time.Now()
			c := dial(t, px.Listen)
			s := accept()
			start := time.Now()
			if tc.afterDial {
				start = dialed
			}
			if tc.fromServer > 0 {
				_, err := s.Write(make([]byte, tc.fromServer))
				must(t, err)
				if tc.serverCloses {
					s.(*net.TCPConn).CloseWrite()
				}
			}
			if tc.fromClient > 0 {
				_, err := c.Write(make([]byte, tc.fromClient))
				must(t, err)
			}
			if tc.remove {
				must(t, px.RemoveToxic("x"))
			}
			check := func(who string, c net.Conn, want int, wantErr error) {
				n, err := readEnd(c)
				if n != want || (wantErr == nil) != (err == nil) || wantErr != nil && !errors.Is(err, wantErr) {
					t.Errorf("%s read %d bytes, then %v; want %d, then %v", who, n, err, want, cmp.Or[any](wantErr, "EOF"))
				}
			}
			check("client", c, tc.atClient, tc.want.client)
			if d := time.Since(start); d < tc.after {
				t.Errorf("the client's end came after %v, want at least %v", d, tc.after)
			}
			if !tc.serverCloses {
				check("server", s, tc.atServer, tc.want.server)
			}
		})
	}
}

// TestToxiproxyResetBeforeConnect: a reset_peer that acts while the
// proxy's connection to the server is still being made resets that
// connection once it is made, rather than closing it with a FIN or
// dropping it. The server's accept queue is full (backlog 0, one
// connection queued), so the proxy's SYN is dropped and sent again a
// second later; the client's bytes meet the toxic meanwhile. (The reset
// used to be lost when the target had no socket yet:
// TestToxiproxyClosing/reset_peer_upstream failed so, 3 runs in 100.)
func TestToxiproxyResetBeforeConnect(t *testing.T) {
	_, api := startAPIProxy(t)
	ln := testconn.Listen(t)
	rc, err := ln.SyscallConn()
	must(t, err)
	var lerr error
	must(t, rc.Control(func(fd uintptr) { lerr = syscall.Listen(int(fd), 0) }))
	must(t, lerr)
	dial(t, ln.Addr().String()) // fills the accept queue
	px, err := toxiproxy.NewClient(api).CreateProxy("early", "127.0.0.1:0", ln.Addr().String())
	must(t, err)
	_, err = px.AddToxic("rst", "reset_peer", "upstream", 1, toxiproxy.Attributes{"timeout": 0})
	must(t, err)
	c := dial(t, px.Listen)
	_, err = c.Write([]byte("hello"))
	must(t, err)
	if n, err := readEnd(c); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read %d bytes, then %v; want 0, then ECONNRESET", n, err)
	}
	// Room in the queue: the proxy's SYN, sent again, gets through.
	accepted := make(chan net.Conn, 2)
	go func() {
		defer close(accepted)
		for range 2 {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- s
		}
	}()
	defer func() {
		ln.Close()
		for s := range accepted {
			s.Close()
		}
	}()
	var s net.Conn
	for _, who := range []string{"filler", "proxy"} {
		select {
		case s = <-accepted:
			if s == nil {
				t.Fatalf("accept of the %s's connection failed", who)
			}
			defer s.Close()
		case <-time.After(10 * time.Second):
			t.Fatalf("no connection from the %s in 10 s", who)
		}
	}
	if n, err := readEnd(s); n != 0 || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read %d bytes, then %v; want 0, then ECONNRESET", n, err)
	}
}
