package conn_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// knownName is a name the test DNS server answers, with 127.0.0.1.
const knownName = "bev-test.example."

// dnsServer is a tiny UDP DNS server on 127.0.0.1: the A records it was
// given for its names, an empty answer for their other types, NXDOMAIN
// for the rest.
type dnsServer struct {
	pc      net.PacketConn
	names   map[string][][4]byte
	done    chan struct{}
	queries atomic.Int32
}

func startDNS(t testing.TB, names map[string][][4]byte) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{pc: pc, names: names, done: make(chan struct{})}
	go d.serve(t)
	t.Cleanup(func() {
		pc.Close()
		<-d.done
	})
	return d
}

func (d *dnsServer) serve(t testing.TB) {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, addr, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		d.queries.Add(1)
		h.Response, h.Authoritative, h.RecursionAvailable = true, true, true
		b := dnsmessage.NewBuilder(nil, h)
		b.EnableCompression()
		addrs, known := d.names[q.Name.String()]
		if !known {
			b = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RCode: dnsmessage.RCodeNameError})
		}
		if err := b.StartQuestions(); err != nil {
			t.Errorf("dns: %v", err)
			return
		}
		b.Question(q)
		if known && q.Type == dnsmessage.TypeA {
			b.StartAnswers()
			for _, a := range addrs {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: a})
			}
		}
		msg, err := b.Finish()
		if err != nil {
			t.Errorf("dns: %v", err)
			return
		}
		d.pc.WriteTo(msg, addr)
	}
}

// resolver returns a pure-Go resolver that asks only this server.
func (d *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.pc.LocalAddr().String())
	}}
}

// TestConnectHostname is libevent's dns/bufferevent_connect_hostname: a
// name that does not exist fails with a not-found DNS error; a literal,
// a name the test server knows and localhost through the default resolver
// all connect; each socket reports exactly one event.
func TestConnectHostname(t *testing.T) {
	base := testbev.NewBase(t)
	dns := startDNS(t, map[string][][4]byte{knownName: {{127, 0, 0, 1}}})
	accepted := make(chan struct{}, 4)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree}, func(*conn.Socket) {
		accepted <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	cases := []struct {
		name     string
		resolver *net.Resolver
		host     string
		want     actor.Event
	}{
		{"nonexistent", dns.resolver(), "no-such-host.bev-test.example", actor.Error},
		{"literal", dns.resolver(), "127.0.0.1", actor.Connected},
		{"known", dns.resolver(), knownName, actor.Connected},
		{"localhost", nil, "localhost", actor.Connected},
	}
	var wg sync.WaitGroup
	for _, tc := range cases {
		s, err := conn.New(base, nil, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		var events atomic.Int32
		got := make(chan actor.Event, 1)
		s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, err error) {
			events.Add(1)
			got <- ev
		}})
		if err := s.ConnectHostname(context.Background(), tc.resolver, "tcp", tc.host, port); err != nil {
			t.Fatalf("%s: ConnectHostname = %v, want nil", tc.name, err)
		}
		wg.Go(func() {
			ev := testkit.Recv(t, got, tc.name+" event")
			if ev != tc.want {
				t.Errorf("%s: event %v, want %v", tc.name, ev, tc.want)
			}
			s.Do(func(*actor.Session) {})
			if n := events.Load(); n != 1 {
				t.Errorf("%s: %d events, want exactly 1", tc.name, n)
			}
			de := s.DNSError()
			if tc.want == actor.Error {
				if de == nil || !de.IsNotFound {
					t.Errorf("%s: DNSError() = %v, want a not-found error", tc.name, de)
				}
			} else if de != nil {
				t.Errorf("%s: DNSError() = %v, want nil", tc.name, de)
			}
			s.Close()
		})
	}
	wg.Wait()
	for range 3 {
		testkit.Recv(t, accepted, "three accepted connections")
	}
	if n := dns.queries.Load(); n < 2 {
		t.Errorf("the DNS server saw %d queries, want at least one per name", n)
	}
}

// TestConnectHostnameBadArgs: a bad network or port fails at once, and no
// event follows.
func TestConnectHostnameBadArgs(t *testing.T) {
	base := testbev.NewBase(t)
	cases := []struct {
		network string
		port    int
		want    error
	}{
		{"udp", 80, conn.ErrNetwork},
		{"unix", 80, conn.ErrNetwork},
		{"tcp", 0, conn.ErrPort},
		{"tcp", 65536, conn.ErrPort},
		{"tcp4", -1, conn.ErrPort},
	}
	for _, tc := range cases {
		s, err := conn.New(base, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var events atomic.Int32
		s.SetCallbacks(actor.Callbacks{Event: func(*actor.Session, actor.Event, error) { events.Add(1) }})
		err = s.ConnectHostname(context.Background(), nil, tc.network, "localhost", tc.port)
		if !errors.Is(err, tc.want) || !errors.Is(err, actor.ErrInvalid) {
			t.Errorf("ConnectHostname(%q, %d) = %v, want %v and actor.ErrInvalid", tc.network, tc.port, err, tc.want)
		}
		s.Do(func(*actor.Session) {})
		if n := events.Load(); n != 0 {
			t.Errorf("ConnectHostname(%q, %d): %d events, want 0", tc.network, tc.port, n)
		}
		s.Close()
	}
}

// TestConnectHostnameOrder: the addresses are tried in order, so a name
// whose first address refuses still connects through the next one
// (libevent gives up after the first).
func TestConnectHostnameOrder(t *testing.T) {
	base := testbev.NewBase(t)
	refused := refusedAddr(t)
	_, port, _ := net.SplitHostPort(refused)
	ln, err := net.Listen("tcp", "127.0.0.2:"+port)
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	defer ln.Close()
	p, _ := strconv.Atoi(port)
	s, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan actor.Event, 1)
	s.SetCallbacks(actor.Callbacks{Event: func(_ *actor.Session, ev actor.Event, _ error) { got <- ev }})
	dns := startDNS(t, map[string][][4]byte{"two.example.": {{127, 0, 0, 1}, {127, 0, 0, 2}}})
	if err := s.ConnectHostname(context.Background(), dns.resolver(), "tcp4", "two.example.", p); err != nil {
		t.Fatal(err)
	}
	if ev := testkit.Recv(t, got, "the connect"); ev != actor.Connected {
		t.Errorf("event %v, want Connected through the second address", ev)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
