package bev_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/pipeline"
)

// gzPayload is what connection id sends: its id, then incompressible
// bytes (so the compressed stream, which the group limits, has a size
// known to within a little), then a compressible stretch.
func gzPayload(id int) []byte {
	p := binary.BigEndian.AppendUint32(nil, uint32(id))
	r := rand.New(rand.NewPCG(uint64(id), 6))
	for range 16 << 10 {
		p = append(p, byte(r.Uint32()))
	}
	return append(p, testkit.PatternAt(id, 0, 16<<10)...)
}

// gzResult is what the server got on one connection: the decompressed
// stream and the compressed bytes its socket read.
type gzResult struct {
	data       []byte
	compressed int64
	err        error
}

// TestRateLimitedGzipGroup streams a known payload from 20 TCP sockets,
// each under a gzip filter and all in one rate-limit group, to a server
// whose sockets are under gunzip filters. Every connection's bytes arrive
// exact; the group's write total is exactly the compressed bytes that
// crossed the sockets, counted on both ends; and the transfer takes at
// least 70 % of the time the group's rate allows for that many bytes.
func TestRateLimitedGzipGroup(t *testing.T) {
	const (
		conns = 20
		rate  = 12 << 10 // bytes per tick, each direction
		tick  = 50 * time.Millisecond
	)
	base := testbev.NewBase(t)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()

	results := make(chan gzResult, conns)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			var wire pipeline.Counter
			f, err := pipeline.NewFilter(s.Bufferevent, pipeline.Chain(&wire, pipeline.Gunzip()), nil, actor.CloseOnFree)
			if err != nil {
				t.Errorf("NewFilter(accepted, gunzip) = %v, want nil", err)
				s.Close()
				return
			}
			var got []byte // touched only by the filter's callbacks
			f.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					p := make([]byte, s.Input().Len())
					s.Read(p)
					got = append(got, p...)
				},
				Event: func(s *actor.Session, ev actor.Event, err error) {
					switch {
					case ev == actor.Reading|actor.EOF:
						results <- gzResult{data: got, compressed: wire.Bytes()}
					case ev&(actor.EOF|actor.Error) != 0:
						results <- gzResult{err: err}
					default:
						return
					}
					s.Close()
				},
			})
			f.Enable(actor.Read)
		})
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := limiter.NewConfig(rate, rate, rate, rate, tick)
	if err != nil {
		t.Fatal(err)
	}
	group, err := limiter.NewGroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type client struct {
		f    *actor.Bufferevent
		wire *pipeline.Counter
	}
	clients := make([]client, conns)
	for i := range clients {
		sock, err := conn.New(base, nil, actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		if err := sock.JoinGroup(group); err != nil {
			t.Fatalf("JoinGroup = %v, want nil", err)
		}
		// Backpressure from the rate limit up through the filter: it
		// hands the socket at most this much ahead of the wire.
		if err := sock.SetWatermark(actor.Write, 0, 8<<10); err != nil {
			t.Fatal(err)
		}
		wire := new(pipeline.Counter)
		f, err := pipeline.NewFilter(sock.Bufferevent, nil, pipeline.Chain(pipeline.Gzip(), wire), actor.CloseOnFree)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = client{f, wire}
		if err := sock.ConnectAddr(ctx, "tcp", ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if n := group.Members(); n != conns {
		t.Errorf("Group.Members() = %d, want %d", n, conns)
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			p := gzPayload(i)
			for off := 0; off < len(p); off += 4 << 10 {
				if err := c.f.Send(ctx, p[off:min(off+4<<10, len(p))]); err != nil {
					t.Errorf("client %d: Send = %v, want nil", i, err)
					c.f.Close()
					return
				}
			}
			// Drain ends the gzip stream, writes it all under the rate
			// limit, and half-closes the socket.
			if err := c.f.Drain(ctx); err != nil {
				t.Errorf("client %d: Drain = %v, want nil", i, err)
			}
		})
	}
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()

	var wireIn int64
	seen := make(map[int]bool)
	for range conns {
		r := testkit.Recv(t, results, "a connection's end")
		if r.err != nil {
			t.Errorf("server connection ended with %v, want Reading|EOF", r.err)
			continue
		}
		if len(r.data) < 4 {
			t.Errorf("server got %d bytes, want a payload", len(r.data))
			continue
		}
		id := int(binary.BigEndian.Uint32(r.data))
		if id >= conns || seen[id] {
			t.Errorf("server got a stream for client %d, want each of 0..%d once", id, conns-1)
			continue
		}
		seen[id] = true
		if want := gzPayload(id); !bytes.Equal(r.data, want) {
			t.Errorf("client %d: server got %d bytes, want %d exactly", id, len(r.data), len(want))
		}
		if sentWire := clients[id].wire.Bytes(); r.compressed != sentWire {
			t.Errorf("client %d: server read %d compressed bytes, want the %d gzip wrote", id, r.compressed, sentWire)
		}
		wireIn += r.compressed
	}
	elapsed := time.Since(start)
	testkit.Recv(t, sent, "the clients' Drain")

	read, written := group.Totals()
	if written != wireIn || read != 0 {
		t.Errorf("Group.Totals() = %d read, %d written, want 0 read, %d written (the compressed bytes the server read)", read, written, wireIn)
	}
	// The bucket holds one tick's worth at the start; every tick after
	// that adds rate, and a tick may begin just after the start.
	ideal := time.Duration((float64(written-rate)/rate - 1) * float64(tick))
	if elapsed < ideal*7/10 {
		t.Errorf("%d compressed bytes at %d per %v took %v, want at least 70%% of %v", written, rate, tick, elapsed, ideal)
	}
	t.Logf("%d connections: %d compressed bytes in %v (ideal %v)", conns, written, elapsed.Round(time.Millisecond), ideal.Round(time.Millisecond))

	if n := group.Members(); n != 0 {
		t.Errorf("Group.Members() = %d after every client closed, want 0", n)
	}
	if err := group.Close(); err != nil {
		t.Errorf("Group.Close() = %v, want nil", err)
	}
	closeAndCheck(t, base)
}
