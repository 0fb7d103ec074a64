package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/bevgo/bev/internal/testconn"
)

// proxyOf returns the proxy named name as GET /proxies/NAME answers it.
func proxyOf(t *testing.T, a *apiServer, name string) proxyJSON {
	t.Helper()
	w := apiDo(a, "GET", "/proxies/"+name, nil)
	var px proxyJSON
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &px) != nil {
		t.Fatalf("GET /proxies/%s: %d %s", name, w.Code, w.Body)
	}
	return px
}

// createProxy makes an enabled proxy named name relaying to upstream on
// a free port and returns its address.
func createProxy(t *testing.T, a *apiServer, name, upstream string) string {
	t.Helper()
	w := apiDo(a, "POST", "/proxies", fmt.Appendf(nil, `{"name":%q,"upstream":%q}`, name, upstream))
	if w.Code != http.StatusCreated {
		t.Fatalf("creating %s: %d %s", name, w.Code, w.Body)
	}
	return proxyOf(t, a, name).Listen
}

// stealListen makes a's next proxy start fail as if something else had
// taken its address between the old proxy's listener closing and the new
// one's opening: it listens there itself first. keep says whether the
// thief keeps the address afterwards (so that the old proxy cannot
// listen there again either) or lets it go at once. It reports how many
// starts it failed.
func stealListen(t *testing.T, a *apiServer, keep bool) *int {
	t.Helper()
	n := new(int)
	a.newProxy = func(cfg *config, log *slog.Logger) (*proxy, error) {
		a.newProxy = nil
		*n++
		ln, err := net.Listen("tcp", cfg.listen)
		if err != nil {
			t.Errorf("stealing %s: %v", cfg.listen, err)
			return newProxy(cfg, log)
		}
		if keep {
			t.Cleanup(func() { ln.Close() })
		} else {
			defer ln.Close()
		}
		return newProxy(cfg, log)
	}
	return n
}

// TestProxyUpdateRefusedChangesNothing: an update whose proxy cannot
// start (its new address in use; its same address taken while it
// restarted for a new upstream; a disabled proxy enabled at an address in
// use) is refused with the reason and changes nothing: the proxy keeps
// serving where it was, with its upstream, and its open connection goes
// on. The update used to stop the proxy first and record the refused
// values, leaving it stopped at an address it did not hold.
func TestProxyUpdateRefusedChangesNothing(t *testing.T) {
	a := newFuzzAPI(t)
	echo := echoServer(t)
	busy := testconn.Listen(t)
	addr := createProxy(t, a, "p", echo)
	c := dial(t, addr)
	roundTrip(t, c, []byte("before"))
	serving := func(when string) {
		t.Helper()
		roundTrip(t, c, []byte("open "+when))     // the open connection goes on
		roundTrip(t, dial(t, addr), []byte(when)) // and the proxy accepts
	}
	update := func(name, body string, code int, says string) {
		t.Helper()
		before := apiState(t, a)
		w := apiDo(a, "POST", "/proxies/"+name, []byte(body))
		if w.Code != code || !strings.Contains(w.Body.String(), says) {
			t.Errorf("update %s with %s: %d %s; want %d saying %q", name, body, w.Code, w.Body, code, says)
		}
		if after := apiState(t, a); after != before {
			t.Errorf("update %s with %s refused, but the proxies went from %s to %s", name, body, before, after)
		}
	}

	update("p", fmt.Sprintf(`{"listen":%q}`, busy.Addr()), http.StatusBadRequest, "address already in use")
	serving("after a new address in use")

	other, accept := acceptor(t)
	stolen := stealListen(t, a, false)
	update("p", fmt.Sprintf(`{"upstream":%q}`, other), http.StatusBadRequest, "address already in use")
	if *stolen != 1 {
		t.Fatalf("the new upstream's proxy was started %d times, want 1", *stolen)
	}
	serving("after its own address was taken during a restart")

	// Accepted, the new upstream closes the old connections (a restart)
	// and new ones go to the new upstream, on the same address.
	w := apiDo(a, "POST", "/proxies/p", fmt.Appendf(nil, `{"upstream":%q}`, other))
	if w.Code != http.StatusOK || proxyOf(t, a, "p").Upstream != other || proxyOf(t, a, "p").Listen != addr {
		t.Fatalf("update to upstream %s: %d %s", other, w.Code, w.Body)
	}
	if n, err := readEnd(c); err != nil || n != 0 {
		t.Errorf("the connection open before the restart: %d bytes, %v; want closed", n, err)
	}
	dial(t, addr).Write([]byte("x"))
	accept()

	// A disabled proxy enabled at an address in use stays disabled where
	// it was.
	update("base", fmt.Sprintf(`{"listen":%q,"enabled":true}`, busy.Addr()), http.StatusBadRequest, "address already in use")
}

// TestProxyUpdateCannotListenAgain: when the address a proxy gave up to
// restart on is taken for good, so that it can neither start anew nor
// listen there again, the update is refused with a 500 saying so, and
// the proxy is shown disabled, as it is, not as serving.
func TestProxyUpdateCannotListenAgain(t *testing.T) {
	a := newFuzzAPI(t)
	echo := echoServer(t)
	addr := createProxy(t, a, "p", echo)
	stealListen(t, a, true)
	w := apiDo(a, "POST", "/proxies/p", fmt.Appendf(nil, `{"upstream":%q}`, "127.0.0.1:9"))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "disabled") {
		t.Errorf("update: %d %s; want 500 saying disabled", w.Code, w.Body)
	}
	if px := proxyOf(t, a, "p"); px.Enabled || px.Listen != addr || px.Upstream != echo {
		t.Errorf("after the update: %+v; want disabled at %s, relaying to %s", px, addr, echo)
	}
}

// TestPopulateRefusedAtListen: a /populate list whose last proxy cannot
// listen (its address in use) is refused whole and changes nothing: the
// new proxy before it is not made, and the proxy it replaced at the same
// address with a new upstream is back, serving, its open connection
// untouched. It used to leave those before it made and replaced.
func TestPopulateRefusedAtListen(t *testing.T) {
	a := newFuzzAPI(t)
	echo := echoServer(t)
	other, accept := acceptor(t)
	busy := testconn.Listen(t)
	addr := createProxy(t, a, "keep", echo)
	c := dial(t, addr)
	roundTrip(t, c, []byte("before"))

	list := func(last string) []byte {
		return fmt.Appendf(nil, `[{"name":"new","upstream":%q},{"name":"keep","listen":%q,"upstream":%q}%s]`, echo, addr, other, last)
	}
	before := apiState(t, a)
	w := apiDo(a, "POST", "/populate", list(fmt.Sprintf(`,{"name":"bad","listen":%q,"upstream":%q}`, busy.Addr(), echo)))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "address already in use") {
		t.Errorf("populate: %d %s; want 400 saying address already in use", w.Code, w.Body)
	}
	var out struct {
		Proxies []proxyJSON `json:"proxies"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Proxies) != 0 {
		t.Errorf("refused populate answers proxies %+v (%v), want none", out.Proxies, err)
	}
	if after := apiState(t, a); after != before {
		t.Errorf("populate refused, but the proxies went from %s to %s", before, after)
	}
	roundTrip(t, c, []byte("still open"))
	roundTrip(t, dial(t, addr), []byte("new connection"))

	// Without the bad one, the list is made: keep restarts on its address
	// with the new upstream, closing its connections.
	if w := apiDo(a, "POST", "/populate", list("")); w.Code != http.StatusCreated {
		t.Fatalf("populate: %d %s", w.Code, w.Body)
	}
	if n, err := readEnd(c); err != nil || n != 0 {
		t.Errorf("the connection open before the restart: %d bytes, %v; want closed", n, err)
	}
	if px := proxyOf(t, a, "keep"); px.Listen != addr || px.Upstream != other {
		t.Errorf("keep after populate: %+v", px)
	}
	dial(t, addr).Write([]byte("x"))
	accept()
	roundTrip(t, dial(t, proxyOf(t, a, "new").Listen), []byte("new"))
}

// TestProxyUpdateSameAddressAnotherName: an update naming the address the
// proxy holds in another way (localhost for 127.0.0.1) is refused as in
// use while the proxy listens there, so the proxy gives it up for the
// new one (as it does for a new upstream): the update is made, not
// refused, and the proxy serves on.
func TestProxyUpdateSameAddressAnotherName(t *testing.T) {
	a := newFuzzAPI(t)
	echo := echoServer(t)
	addr := createProxy(t, a, "p", echo)
	_, port, err := net.SplitHostPort(addr)
	must(t, err)
	w := apiDo(a, "POST", "/proxies/p", fmt.Appendf(nil, `{"listen":"localhost:%s"}`, port))
	if w.Code != http.StatusOK {
		t.Fatalf("update to localhost:%s: %d %s", port, w.Code, w.Body)
	}
	if px := proxyOf(t, a, "p"); px.Listen != addr || !px.Enabled {
		t.Errorf("after the update: %+v; want enabled at %s", px, addr)
	}
	roundTrip(t, dial(t, addr), []byte("served"))
}
