package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testredis"
)

// storeOf returns the group_store section of a proxy's -stats.
func storeOf(t *testing.T, p *running) map[string]any {
	t.Helper()
	vars := statsOf(t, p)
	st, ok := vars["group_store"].(map[string]any)
	if !ok {
		t.Fatalf("no group_store in the stats: %v", vars)
	}
	return st
}

// storeCount returns counter name of a group_store stats map, 0 when
// it is missing.
func storeCount(st map[string]any, name string) float64 {
	n, _ := st[name].(float64)
	return n
}

// download fetches url through client and checks it is body, byte for
// byte.
func download(t *testing.T, url string, body []byte) {
	resp, err := httpClient(t, nil).Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	if got, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(got, body) {
		t.Errorf("GET %s: %d bytes, %v; want the %d served", url, len(got), err, len(body))
	}
}

// TestGroupRedisShared: two proxies name the same group in one Redis, so
// -group-rate is their budget together: 512 KiB through each at a shared
// 1 MiB/s takes about a second, where two groups of their own would take
// half that.
func TestGroupRedisShared(t *testing.T) {
	srv := testredis.New(t)
	body := randomBytes(t, 512<<10)
	target := serveHTTP(t, bodyHandler(body), nil)
	args := []string{"-target", target, "-group-rate", "1MiB", "-group-redis", srv.URL(), "-group-name", "shared", "-stats", "127.0.0.1:0"}
	a, b := startProxy(t, args...), startProxy(t, args...)
	start := time.Now()
	var wg sync.WaitGroup
	for _, p := range []*running{a, b} {
		wg.Go(func() { download(t, "http://"+p.addr+"/", body) })
	}
	wg.Wait()
	took := time.Since(start)
	if took < 800*time.Millisecond || took > 1600*time.Millisecond {
		t.Errorf("512 KiB through each of two proxies sharing 1 MiB/s took %v, want about 1 s", took)
	}
	st := storeOf(t, a)
	if st["processes"] != 2.0 || st["shared"] != true || st["errors"] != 0.0 || st["fallback"] != "local" {
		t.Errorf("group_store = %v: want 2 processes, shared, no errors, local fallback", st)
	}
	if l, _ := st["leases"].(float64); l < 5 {
		t.Errorf("group_store leases = %v, want one per tick", st["leases"])
	}
	if u, _ := st["url"].(string); u != srv.URL() {
		t.Errorf("group_store url = %q, want %q", u, srv.URL())
	}
}

// TestGroupRedisUnreachable: a Redis that does not answer at start-up
// makes the proxy exit 1, saying which URL failed and why.
func TestGroupRedisUnreachable(t *testing.T) {
	srv := testredis.New(t)
	srv.Stop()
	url := strings.Replace(srv.URL(), "redis://", "redis://u:hunter2@", 1)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-group-rate", "1MiB", "-group-redis", url}, &out, &errb)
	host := strings.TrimPrefix(srv.URL(), "redis://")
	if code != 1 || !strings.Contains(errb.String(), host) || !strings.Contains(errb.String(), "refused") || strings.Contains(errb.String(), "hunter2") {
		t.Errorf("proxy with Redis down exited %d, stderr %q: want 1, naming %s and why, without the password", code, errb.String(), host)
	}
}

func TestGroupRedisFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-group-redis", "redis://127.0.0.1:1"},
		{"-group-rate", "1MiB", "-group-name", "x"},
		{"-group-rate", "1MiB", "-group-redis-fallback", "block"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-fallback", "sometimes"},
		{"-group-rate", "1MiB", "-group-redis-ca", "ca.pem"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-ca", "ca.pem"},
		{"-group-rate", "1MiB", "-group-redis-hold", "2s"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-hold", "2s"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-fallback", "local", "-group-redis-hold", "2s"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-fallback", "bounded", "-group-redis-hold", "-1s"},
		{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1", "-group-redis-fallback", "bounded", "-group-redis-hold", "soon"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil || !strings.Contains(err.Error(), "-group-") {
			t.Errorf("parseFlags(%q) = %v, want an error naming the flag", args, err)
		}
	}
	base := []string{"-group-rate", "1MiB", "-group-redis", "redis://127.0.0.1:1"}
	_, err := parseFlags(append(base, "-group-redis-fallback", "sometimes"), io.Discard)
	if want := `-group-redis-fallback "sometimes": want local, block or bounded`; err == nil || err.Error() != want {
		t.Errorf("parseFlags with an unknown fallback = %v, want %q", err, want)
	}
	for _, fb := range []string{"local", "block", "bounded"} {
		if _, err := parseFlags(append(base, "-group-redis-fallback", fb), io.Discard); err != nil {
			t.Errorf("parseFlags with -group-redis-fallback %s = %v", fb, err)
		}
	}
	c, err := parseFlags(append(base, "-group-redis-fallback", "bounded", "-group-redis-hold", "2s"), io.Discard)
	if err != nil || c.groupHold != 2*time.Second {
		t.Errorf("parseFlags with -group-redis-hold 2s = %+v, %v", c, err)
	}
}

// TestGroupRedisBounded: with -group-redis-fallback bounded and a hold of
// three ticks, a proxy that loses Redis grants itself at most three
// local leases, then its stats count fenced ticks; it leases from Redis
// again once Redis is back.
func TestGroupRedisBounded(t *testing.T) {
	srv := testredis.New(t)
	p := startProxy(t, "-group-rate", "1MiB", "-group-redis", srv.URL(), "-group-redis-fallback", "bounded",
		"-group-redis-hold", "300ms", "-stats", "127.0.0.1:0")
	waitStats(t, p, "leases", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "leases") >= 3
	})
	before := storeOf(t, p)
	srv.Stop()
	waitStats(t, p, "fenced ticks", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "fenced") >= 2
	})
	if st := storeOf(t, p); st["fallback"] != "bounded" || st["shared"] != false || st["local_leases"].(float64) > 3 {
		t.Errorf("group_store past the hold = %v: want the bounded fallback, not shared, at most 3 local leases", st)
	}
	back, err := testredis.StartOn(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Stop()
	waitStats(t, p, "the recovery", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "recoveries") > storeCount(before, "recoveries") && st["shared"] == true
	})
}

// TestGroupRedisFault: Redis is killed in the middle of a download and
// started again: the download completes byte for byte, and the stats
// show the outage and the recovery.
func TestGroupRedisFault(t *testing.T) {
	srv := testredis.New(t)
	body := randomBytes(t, 1<<20)
	target := serveHTTP(t, bodyHandler(body), nil)
	p := startProxy(t, "-target", target, "-group-rate", "1MiB", "-group-redis", srv.URL(), "-stats", "127.0.0.1:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		download(t, "http://"+p.addr+"/", body)
	}()
	// Once the download is under way, kill Redis, wait for the proxy to
	// notice, and start Redis again.
	waitStats(t, p, "the download to start", func(v map[string]any) bool {
		down, _ := v["bytes_target_to_client"].(float64)
		return down > 100<<10
	})
	// Counted from here: on a loaded machine a slow Redis call may count
	// as an outage of its own, before or after this one.
	before := storeOf(t, p)
	srv.Stop()
	waitStats(t, p, "the outage", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "outages") > storeCount(before, "outages") && st["shared"] == false
	})
	// The outage may first be seen mid-tick; let the policy serve a few
	// ticks before Redis comes back.
	waitStats(t, p, "local leases", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "local_leases") >= 3
	})
	back, err := testredis.StartOn(srv.Port)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Stop()
	<-done
	waitStats(t, p, "the recovery", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "recoveries") > storeCount(before, "recoveries") && st["shared"] == true
	})
	if st := storeOf(t, p); st["local_leases"] == 0.0 || st["errors"] == 0.0 {
		t.Errorf("group_store after the outage = %v: want local leases and errors counted", st)
	}
}

// waitStats polls the stats every 20 ms, for up to 10 s, until cond holds.
func waitStats(t *testing.T, p *running, what string, cond func(map[string]any) bool) {
	t.Helper()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for range 500 {
		if cond(statsOf(t, p)) {
			return
		}
		<-tk.C
	}
	t.Fatalf("timed out waiting for %s; stats %v", what, statsOf(t, p))
}

// TestGroupRedisCA: a Redis that speaks only TLS with a certificate of
// its own CA. With -group-redis-ca naming that CA the proxy leases from
// it; without, it exits 1 naming the URL and the certificate's failure;
// with a file holding no certificate, 2.
func TestGroupRedisCA(t *testing.T) {
	srv, cert := testredis.NewTLS(t)
	dir := t.TempDir()
	ca, notPEM := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "not.pem")
	if err := os.WriteFile(ca, cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notPEM, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	p := startProxy(t, "-group-rate", "1MiB", "-group-redis", srv.URL(), "-group-redis-ca", ca, "-stats", "127.0.0.1:0")
	waitStats(t, p, "leases over TLS", func(v map[string]any) bool {
		st, _ := v["group_store"].(map[string]any)
		return storeCount(st, "leases") >= 3
	})
	if st := storeOf(t, p); st["errors"] != 0.0 || st["shared"] != true {
		t.Errorf("group_store over TLS = %v: want shared, no errors", st)
	}

	host := strings.TrimPrefix(srv.URL(), "rediss://")
	for _, tc := range []struct {
		name string
		args []string
		code int
		says []string
	}{
		{"without the CA", nil, 1, []string{"-group-redis", host, "certificate"}},
		{"a file without a certificate", []string{"-group-redis-ca", notPEM}, 2, []string{"-group-redis-ca", "no PEM certificate"}},
		{"a missing file", []string{"-group-redis-ca", filepath.Join(dir, "missing.pem")}, 2, []string{"-group-redis-ca", "missing.pem"}},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"-listen", "127.0.0.1:0", "-group-rate", "1MiB", "-group-redis", srv.URL()}, tc.args...)
		code := run(context.Background(), args, &out, &errb)
		ok := code == tc.code
		for _, s := range tc.says {
			ok = ok && strings.Contains(errb.String(), s)
		}
		if !ok {
			t.Errorf("%s: exited %d, stderr %q; want %d, saying %q", tc.name, code, errb.String(), tc.code, tc.says)
		}
	}
}
