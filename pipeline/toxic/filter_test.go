package toxic_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/pipeline/toxic"
)

// Tests of filter.go's WrapConn.

// TestWrapConnNettest runs the net.Conn conformance suite over wrapped
// TCP connections, without toxics and with a 1 ms latency each way.
func TestWrapConnNettest(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func() *toxic.Set
	}{
		{"empty", func() *toxic.Set { return new(toxic.Set) }},
		{"latency", func() *toxic.Set {
			s := new(toxic.Set)
			s.Add(toxic.New("up", toxic.Upstream, &toxic.Latency{Latency: 1}))
			s.Add(toxic.New("down", toxic.Downstream, &toxic.Latency{Latency: 1}))
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the suite waits on its own timeouts: run both at once
			nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
				base := actor.NewBase()
				a, b := testconn.Pair(t, "tcp")
				set := tc.set()
				if c1, err = toxic.WrapConn(base, a, set); err != nil {
					return nil, nil, nil, err
				}
				if c2, err = toxic.WrapConn(base, b, set); err != nil {
					return nil, nil, nil, err
				}
				stop = func() {
					c1.Close()
					c2.Close()
					base.Close()
				}
				return c1, c2, stop, nil
			})
		})
	}
}

func TestWrapConnResetPeer(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	a, server := testconn.Pair(t, "tcp")
	defer server.Close()
	set := new(toxic.Set)
	must(t, set.Add(toxic.New("rst", toxic.Upstream, &toxic.ResetPeer{})))
	c, err := toxic.WrapConn(base, a, set)
	must(t, err)
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// The server sees an RST, not a FIN.
	server.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(server)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read: %v, want ECONNRESET", err)
	}
	// The client sees the reset too.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client read: %v, want ECONNRESET", err)
	}
}

func TestWrapConnLimitData(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	a, server := testconn.Pair(t, "tcp")
	defer server.Close()
	set := new(toxic.Set)
	must(t, set.Add(toxic.New("lim", toxic.Downstream, &toxic.LimitData{Bytes: 1000})))
	c, err := toxic.WrapConn(base, a, set)
	must(t, err)
	defer c.Close()
	data := bytes.Repeat([]byte("0123456789"), 500)
	go server.Write(data)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, data[:1000]) {
		t.Fatalf("read %d bytes, %v; want the first 1000, EOF", len(got), err)
	}
	// As toxiproxy's, it closes the connection: the server reads EOF.
	if n, err := readToEnd(server); n != 0 || err != nil {
		t.Errorf("server read %d bytes, %v; want EOF", n, err)
	}
	if n := toxic.Watched(set); n != 2 {
		t.Errorf("%d stages watched while the connection is open, want 2", n)
	}
	must(t, c.Close())
	if n := toxic.Watched(set); n != 0 {
		t.Errorf("%d stages still watched after Close, want 0", n)
	}
}

// readToEnd reads c until its end (10 s at most) and returns how many
// bytes came and the error (nil for EOF).
func readToEnd(c net.Conn) (int, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	return int(n), err
}

// TestWrapConnCloses: a toxic that closes its stream closes the whole
// connection, as toxiproxy's close both sockets: after what passed
// before, the server reads EOF and so does the client, whichever stream
// the toxic was on.
func TestWrapConnCloses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		t          toxic.Toxic
		fromClient int // bytes the client writes
		fromServer int // bytes the server writes (it keeps its side open)
		atServer   int // bytes the server reads before EOF
		atClient   int // bytes the client reads before EOF
	}{
		{"limit_data upstream", toxic.New("x", toxic.Upstream, &toxic.LimitData{Bytes: 1000}), 5000, 0, 1000, 0},
		{"limit_data downstream", toxic.New("x", toxic.Downstream, &toxic.LimitData{Bytes: 1000}), 0, 5000, 0, 1000},
		{"timeout upstream", toxic.New("x", toxic.Upstream, &toxic.Timeout{Timeout: 50}), 100, 0, 0, 0},
		{"timeout downstream", toxic.New("x", toxic.Downstream, &toxic.Timeout{Timeout: 50}), 0, 100, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := actor.NewBase()
			defer base.Close()
			a, server := testconn.Pair(t, "tcp")
			defer server.Close()
			set := new(toxic.Set)
			must(t, set.Add(tc.t))
			c, err := toxic.WrapConn(base, a, set)
			must(t, err)
			defer c.Close()
			if tc.fromServer > 0 {
				if _, err := server.Write(make([]byte, tc.fromServer)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fromClient > 0 {
				if _, err := c.Write(make([]byte, tc.fromClient)); err != nil {
					t.Fatal(err)
				}
			}
			// A wrapped connection reads when its user does: on the
			// stream the client reads, the toxic acts once it reads.
			ends := []func(){
				func() {
					if n, err := readToEnd(server); n != tc.atServer || err != nil {
						t.Errorf("server read %d bytes, %v; want %d, EOF", n, err, tc.atServer)
					}
				},
				func() {
					if n, err := readToEnd(c); n != tc.atClient || err != nil {
						t.Errorf("client read %d bytes, %v; want %d, EOF", n, err, tc.atClient)
					}
				},
			}
			if tc.t.Stream == toxic.Downstream {
				ends[0], ends[1] = ends[1], ends[0]
			}
			ends[0]()
			ends[1]()
		})
	}
}
