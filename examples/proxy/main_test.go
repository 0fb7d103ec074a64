package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// curl fetches url with the extra args into a file in the test's
// directory and returns the body and how long curl took.
func curl(t *testing.T, url string, args ...string) ([]byte, time.Duration) {
	t.Helper()
	bin := needTool(t, "curl", "curl")
	out := filepath.Join(t.TempDir(), "body")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"-sS", "--fail", "--noproxy", "*", "-o", out}, append(args, url)...)
	cmd := exec.CommandContext(ctx, bin, args...)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	took := time.Since(start)
	body, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return body, took
}

// TestCurl fetches a 4 MiB body of the test's own HTTP server through the
// proxy with curl, byte for byte, and shuts the proxy down with the signal.
func TestCurl(t *testing.T) {
	body := randomBytes(t, 4<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target)
	got, _ := curl(t, "http://"+p.addr+"/file")
	if !bytes.Equal(got, body) {
		t.Fatalf("curl through the proxy got %d bytes, want the %d served, byte for byte", len(got), len(body))
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit status after the signal = %d, want 0; stderr:\n%s", code, p.errOut)
	}
	logs := p.errOut.String()
	// One line per connection at INFO, with the client, the bytes each
	// way, the duration and why it ended.
	conns := regexp.MustCompile(`(?m)^.*conn=1 .*$`).FindAllString(logs, -1)
	if len(conns) != 1 || !regexp.MustCompile(`level=INFO msg=closed conn=1 client=127\.0\.0\.1:\d+ client_to_target=\d+ target_to_client=\d+ duration=\S+ cause="client closed"`).MatchString(conns[0]) {
		t.Errorf("want one INFO line for the connection, with client, bytes, duration and cause; got:\n%s", logs)
	}
	down := regexp.MustCompile(`msg=closed .*target_to_client=(\d+)`).FindStringSubmatch(logs)
	if down == nil {
		t.Errorf("no closed line with target_to_client in:\n%s", logs)
	} else if n, _ := strconv.Atoi(down[1]); n <= len(body) {
		t.Errorf("closed line says %d bytes to the client, want the body's %d and the headers", n, len(body))
	}
	if !strings.Contains(p.out.String(), "proxy: 1 connections") {
		t.Errorf("totals missing from stdout:\n%s", p.out)
	}
}

// TestLogLevel: -log-level DEBUG adds the opened and target connected
// lines; -log-level WARN leaves a connection that went well out.
func TestLogLevel(t *testing.T) {
	body := randomBytes(t, 1000)
	target := serveHTTP(t, bodyHandler(body), nil)
	for _, tc := range []struct {
		level string
		want  []string
	}{
		{"DEBUG", []string{"level=DEBUG msg=opened conn=1", `level=DEBUG msg="target connected" conn=1`, "level=INFO msg=closed conn=1"}},
		{"WARN", nil},
	} {
		t.Run(tc.level, func(t *testing.T) {
			p := startProxy(t, "-target", target, "-log-level", tc.level)
			if got, _ := curl(t, "http://"+p.addr+"/file"); !bytes.Equal(got, body) {
				t.Fatalf("curl got %d bytes, want %d", len(got), len(body))
			}
			p.stop(t)
			logs := p.errOut.String()
			for _, want := range tc.want {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
			if tc.want == nil && logs != "" {
				t.Errorf("-log-level WARN logged a connection that went well:\n%s", logs)
			}
		})
	}
}

// TestCurlRate: with -rate 1MiB, the 4 MiB download takes 4 s, within 10 %.
func TestCurlRate(t *testing.T) {
	body := randomBytes(t, 4<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-rate", "1MiB")
	got, took := curl(t, "http://"+p.addr+"/file")
	if !bytes.Equal(got, body) {
		t.Fatalf("curl through the proxy got %d bytes, want the %d served, byte for byte", len(got), len(body))
	}
	if took < 3600*time.Millisecond || took > 4400*time.Millisecond {
		t.Errorf("4 MiB at -rate 1MiB took %v, want 4 s ± 10 %%", took)
	}
}

// TestEmbeddedUpstream runs with no -target: the proxy serves its own
// upstream and prints curl commands, which work.
func TestEmbeddedUpstream(t *testing.T) {
	p := startProxy(t)
	// The curl commands follow the listening line: wait for them.
	p.out.waitFor(t, regexp.MustCompile(`curl http://`+regexp.QuoteMeta(p.addr)+`/`), 10*time.Second)
	out := p.out.String()
	if !strings.Contains(out, "(the embedded upstream)") || !strings.Contains(out, "curl http://"+p.addr+"/") {
		t.Fatalf("greeting lacks the upstream and the curl command:\n%s", out)
	}
	hello, _ := curl(t, "http://"+p.addr+"/")
	if !strings.Contains(string(hello), "Hello from the proxy's embedded upstream") {
		t.Errorf("GET / = %q, want the greeting", hello)
	}
	got, _ := curl(t, "http://"+p.addr+"/bytes/1MiB")
	if len(got) != 1<<20 {
		t.Fatalf("GET /bytes/1MiB gave %d bytes, want %d", len(got), 1<<20)
	}
	for i, b := range got {
		if b != byte(i%251) {
			t.Fatalf("byte %d of /bytes/1MiB = %d, want %d", i, b, i%251)
		}
	}
	file := filepath.Join(t.TempDir(), "up")
	up := randomBytes(t, 300<<10)
	if err := os.WriteFile(file, up, 0o600); err != nil {
		t.Fatal(err)
	}
	echoed, _ := curl(t, "http://"+p.addr+"/echo", "--data-binary", "@"+file)
	if !bytes.Equal(echoed, up) {
		t.Errorf("POST /echo returned %d bytes, want the %d sent", len(echoed), len(up))
	}
}

// TestOpenSSLClient terminates TLS with -tls-cert/-tls-key and talks to
// it with openssl s_client; curl then checks a whole body over it.
func TestOpenSSLClient(t *testing.T) {
	bin := needTool(t, "openssl", "openssl")
	certFile, keyFile, _, _ := testCert(t, t.TempDir())
	body := randomBytes(t, 1<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-tls-cert", certFile, "-tls-key", keyFile)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", p.addr, "-servername", "localhost",
		"-CAfile", certFile, "-verify_return_error", "-quiet")
	cmd.Stdin = strings.NewReader("GET /small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, stderr.String())
	}
	if !bytes.HasPrefix(out, []byte("HTTP/1.1 200 OK")) || !bytes.HasSuffix(out, body) {
		t.Errorf("openssl s_client got %d bytes starting %q, want a 200 ending in the %d-byte body", len(out), out[:min(len(out), 40)], len(body))
	}
	got, _ := curl(t, "https://localhost:"+portOf(t, p.addr)+"/file", "--cacert", certFile)
	if !bytes.Equal(got, body) {
		t.Errorf("curl over TLS got %d bytes, want the %d served, byte for byte", len(got), len(body))
	}
}

func portOf(t *testing.T, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// goBuild builds the main package in dir into the test's directory.
func goBuild(t *testing.T, ctx context.Context, dir, name string, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// process is a program the test started; it is killed and waited for at
// cleanup, and its output is kept.
type process struct {
	cmd         *exec.Cmd
	out, errOut *syncBuffer
	exited      chan error // Wait's result, once
}

func startProcess(t *testing.T, ctx context.Context, bin string, args ...string) *process {
	t.Helper()
	p := &process{out: newSyncBuffer(), errOut: newSyncBuffer(), exited: make(chan error, 1)}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// TestLoadgen50: 50 clients stream through the proxy to examples/echo for
// 2 s, and the load generator (streamLoad, in loadgen_test.go) checks
// every byte that comes back. The proxy and the echo server are built as
// programs, without the race detector, so that what the clients have in
// flight when they stop drains quickly (under the race detector it could
// not, on a busy machine); that also tests main: SIGTERM makes it print
// the totals and exit 0.
func TestLoadgen50(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	proxyBin := goBuild(t, ctx, ".", "proxy")
	echoBin := goBuild(t, ctx, "../echo", "echo")

	echo := startProcess(t, ctx, echoBin, "-addr", "127.0.0.1:0")
	echoAddr := echo.errOut.waitFor(t, regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`), time.Minute)
	proxy := startProcess(t, ctx, proxyBin, "-listen", "127.0.0.1:0", "-target", echoAddr)
	addr := proxy.out.waitFor(t, reListen, time.Minute)

	res := streamLoad(addr, 50, 4096, 2*time.Second)
	if len(res.errs) > 0 {
		t.Fatalf("load through the proxy: %d of 50 connections failed: %v", len(res.errs), res.errs)
	}
	if res.bytes == 0 {
		t.Errorf("the load moved no bytes")
	}
	t.Logf("load: 50 connections echoed %d bytes in %v", res.bytes, res.took)

	if err := proxy.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-proxy.exited:
		proxy.exited <- err // for the cleanup
		if err != nil {
			t.Errorf("the proxy after SIGTERM: %v, want exit status 0; stderr:\n%s", err, proxy.errOut)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy did not exit within 30 s of SIGTERM")
	}
	totals := regexp.MustCompile(`proxy: 50 connections \(0 could not reach the target\), (\d+) bytes client→target, (\d+) bytes target→client`).FindStringSubmatch(proxy.out.String())
	if totals == nil || totals[1] != totals[2] || totals[1] != strconv.FormatInt(res.bytes, 10) {
		t.Errorf("totals after SIGTERM, want 50 connections and the %d bytes echoed each way:\n%s", res.bytes, proxy.out)
	}
}

// TestConcurrentClients: 50 clients at once, each sending 256 KiB through
// the proxy (in this process, under the race detector when it is on) to a
// bev echo server and half-closing; each gets its bytes back, then EOF.
func TestConcurrentClients(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t), "-stats", "127.0.0.1:0")
	var wg sync.WaitGroup
	for i := range 50 {
		msg := randomBytes(t, 256<<10)
		wg.Go(func() {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			got, err, werr := sendAndReadBack(c, msg)
			if werr != nil {
				t.Errorf("client %d: write: %v", i, werr)
			}
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("client %d: got %d bytes back, %v; want the %d sent, then EOF", i, len(got), err, len(msg))
			}
		})
	}
	wg.Wait()
	if v := statsOf(t, p); v["connections_total"] != 50.0 || v["bytes_client_to_target"] != float64(50*256<<10) {
		t.Errorf("stats after 50 clients = %v", v)
	}
}

// TestHalfClose: a client that half-closes still gets everything back,
// then EOF: the proxy half-closes the target after the last byte and
// relays the other direction until it ends.
func TestHalfClose(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t))
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := randomBytes(t, 3<<20)
	got, err, werr := sendAndReadBack(c, msg)
	if werr != nil {
		t.Fatalf("write and half-close: %v", werr)
	}
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after half-close read %d bytes, %v; want the %d sent, then EOF", len(got), err, len(msg))
	}
}

// TestTLSUpstream relays to a TLS HTTP server of the test's own, named by
// host name (resolved by ConnectHostname; the name is the SNI and what the
// certificate is checked against), through a TLS socket and through the
// pipeline TLS filter, verified with -tls-ca or not at all with -insecure.
func TestTLSUpstream(t *testing.T) {
	certFile, _, cert, _ := testCert(t, t.TempDir())
	body := randomBytes(t, 2<<20)
	var mu sync.Mutex
	var sni []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sni = append(sni, r.TLS.ServerName)
		mu.Unlock()
		w.Write(body)
	})
	target := "localhost:" + portOf(t, serveHTTP(t, h, &cert))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"socket/ca", []string{"-tls-ca", certFile}},
		{"socket/insecure", []string{"-insecure"}},
		{"filter/ca", []string{"-tls-filter", "-tls-ca", certFile}},
		{"filter/insecure", []string{"-tls-filter", "-insecure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, append([]string{"-target", target, "-tls-upstream"}, tc.args...)...)
			resp, err := httpClient(t, nil).Get("http://" + p.addr + "/")
			if err != nil {
				t.Fatalf("GET through the proxy: %v\nlog:\n%s", err, p.errOut)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("GET through the proxy: %d bytes, %v; want the %d served", len(got), err, len(body))
			}
			mu.Lock()
			last := sni[len(sni)-1]
			mu.Unlock()
			if last != "localhost" {
				t.Errorf("the target saw SNI %q, want %q", last, "localhost")
			}

		})
	}
	// Without the CA the certificate does not verify: the connection is
	// closed, and the log says why.
	for _, mode := range []string{"socket", "filter"} {
		t.Run(mode+"/unverified", func(t *testing.T) {
			args := []string{"-target", target, "-tls-upstream"}
			if mode == "filter" {
				args = append(args, "-tls-filter")
			}
			p := startProxy(t, args...)
			if _, err := httpClient(t, nil).Get("http://" + p.addr + "/"); err == nil {
				t.Fatal("GET through the proxy succeeded, want a failure: the target's certificate is not trusted")
			}
			p.errOut.waitFor(t, regexp.MustCompile(`cause="connect to localhost:\d+: .*certificate`), 10*time.Second)
		})
	}
}

// TestGroupRate: two downloads of 1 MiB share -group-rate 2MiB, so
// together they take about a second; the group's totals count them.
func TestGroupRate(t *testing.T) {
	body := randomBytes(t, 1<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-group-rate", "2MiB", "-min-share", "4KiB", "-stats", "127.0.0.1:0")
	client := httpClient(t, nil)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			resp, err := client.Get("http://" + p.addr + "/")
			if err != nil {
				t.Errorf("download %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			if got, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(got, body) {
				t.Errorf("download %d: %d bytes, %v; want the %d served", i, len(got), err, len(body))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if took < 700*time.Millisecond || took > 1600*time.Millisecond {
		t.Errorf("2 MiB at -group-rate 2MiB took %v, want about 1 s", took)
	}
	// A write is counted once it has returned, which may be after the
	// client has the bytes; once both connections are closed, all are.
	p.errOut.waitFor(t, regexp.MustCompile(`(?s)msg=closed.*msg=closed`), 10*time.Second)
	vars := statsOf(t, p)
	group, _ := vars["group"].(map[string]any)
	if w, _ := group["bytes_written"].(float64); w < 2<<20 {
		t.Errorf("group bytes_written = %v, want at least %d; stats %v", group["bytes_written"], 2<<20, vars)
	}
	if ms, _ := group["min_share"].(float64); ms != 4096 {
		t.Errorf("group min_share = %v, want 4096", group["min_share"])
	}
}

// statsOf fetches the -stats JSON.
func statsOf(t *testing.T, p *running) map[string]any {
	t.Helper()
	// The stats line may follow the listening line by a moment: wait for it.
	addr := p.out.waitFor(t, reStats, 10*time.Second)
	resp, err := httpClient(t, nil).Get("http://" + addr + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("stats Content-Type = %q, want JSON", ct)
	}
	var vars map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		t.Fatalf("stats JSON: %v", err)
	}
	return vars
}

// TestStats: the counters follow the connections and the bytes.
func TestStats(t *testing.T) {
	body := randomBytes(t, 100<<10)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-stats", "127.0.0.1:0")
	if v := statsOf(t, p); v["connections_total"] != 0.0 || v["connections_open"] != 0.0 || v["output_peak_bytes"] != 0.0 || v["target"] != target || v["listen"] != p.addr {
		t.Errorf("stats before any connection = %v", v)
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The connection is open (keep-alive) and every byte has been counted
	// by the time the client has it.
	v := statsOf(t, p)
	if v["connections_open"] != 1.0 || v["connections_total"] != 1.0 {
		t.Errorf("stats with one open connection = %v", v)
	}
	if up := v["bytes_client_to_target"]; up != float64(len(req)) {
		t.Errorf("bytes_client_to_target = %v, want %d", up, len(req))
	}
	if down, _ := v["bytes_target_to_client"].(float64); down < float64(len(body)) {
		t.Errorf("bytes_target_to_client = %v, want at least %d", down, len(body))
	}
	// A read the kernel takes whole, written through the client's lent
	// sink, is never held: 0 is a true peak here (backpressure_test
	// checks a peak under load).
	if peak, ok := v["output_peak_bytes"].(float64); !ok || peak < 0 || peak > float64(len(body)+len(req)+1024) {
		t.Errorf("output_peak_bytes = %v after a %d-byte download, want at most the response", v["output_peak_bytes"], len(body))
	}
}

// TestShutdownInFlight: the signal comes while a rate-limited download is
// under way; the proxy stops accepting but lets it finish, every byte,
// then exits 0.
func TestShutdownInFlight(t *testing.T) {
	body := randomBytes(t, 1<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-rate", "1MiB", "-drain-timeout", "20s")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1000)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	p.cancel() // the signal
	p.errOut.waitFor(t, regexp.MustCompile(`msg="shutting down".* open=1`), 10*time.Second)
	if c2, err := net.Dial("tcp", p.addr); err == nil {
		c2.Close()
		t.Error("the proxy still accepts after the signal")
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the rest after the signal: %v", err)
	}
	c.Close() // the client's end of the stream: now the connection is over
	resp := append(first, rest...)
	if !bytes.HasSuffix(resp, body) {
		t.Fatalf("got %d bytes after the signal, want the whole %d-byte body", len(resp), len(body))
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
}

// TestShutdownDeadline: a connection that does not finish is closed when
// -drain-timeout runs out, and the proxy still exits 0.
func TestShutdownDeadline(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t), "-drain-timeout", "200ms")
	c, err := net.Dial("tcp", p.addr)
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
	stopWithin(t, p, 5*time.Second)
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a connection the shutdown closed, want EOF", n)
	}
	if !strings.Contains(p.errOut.String(), "drain timeout ran out") {
		t.Errorf("the log does not say the connection was cut by the deadline:\n%s", p.errOut)
	}
}

// TestIdleTimeout: a connection that moves nothing is closed after
// -idle-timeout (and not much later).
func TestIdleTimeout(t *testing.T) {
	p := startProxy(t, "-target", echoServer(t), "-idle-timeout", "300ms")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	n, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if err == nil {
		t.Fatalf("read %d bytes from an idle connection, want it closed", n)
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("an idle connection was closed after %v, want about 300 ms", took)
	}
	p.errOut.waitFor(t, regexp.MustCompile(`cause="idle for 300ms"`), 10*time.Second)
}

// TestConnectFailure: a target that refuses is logged at WARN and counted, and
// the client sees its connection closed.
func TestConnectFailure(t *testing.T) {
	dead := testaddr.Refused(t)
	p := startProxy(t, "-target", dead, "-stats", "127.0.0.1:0")
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
	p.errOut.waitFor(t, regexp.MustCompile(`level=WARN msg=closed .*cause="connect to 127\.0\.0\.1:\d+: .*refused"`), 10*time.Second)
	if v := statsOf(t, p); v["connections_failed"] != 1.0 {
		t.Errorf("connections_failed = %v, want 1", v["connections_failed"])
	}
}
