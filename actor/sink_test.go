package actor_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// Tests of sink.go: writes handed to a BufferWriter (chunkSink).

func TestBufferWriter(t *testing.T) {
	for _, direct := range []bool{true, false} {
		name := "loop"
		if direct {
			name = "direct"
		}
		t.Run(name, func(t *testing.T) {
			tr := newBufTransport(direct)
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// Pieces of many sizes, so that chunks of every pool class
			// and a chunk bigger than the per-write maximum go over.
			var want []byte
			for i, size := range []int{1, 700, 5000, 16 << 10, 100 << 10, 3, 20000} {
				p := bytes.Repeat([]byte{byte('a' + i)}, size)
				want = append(want, p...)
				if err := b.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			got, calls := tr.waitGot(t, len(want))
			if !bytes.Equal(got, want) {
				t.Fatalf("the transport got %d bytes that differ from the %d written", len(got), len(want))
			}
			sawDirect, sawBuffer := false, false
			for _, c := range calls {
				if c.kind == "buffer" {
					sawBuffer = true
					if !c.wait {
						sawDirect = true
					}
				}
				if c.n > b.MaxWrite() {
					t.Errorf("a %s write of %d bytes, over the per-write maximum %d", c.kind, c.n, b.MaxWrite())
				}
			}
			if !sawBuffer {
				t.Errorf("no WriteBuffer call among %v, want chunks handed over", calls)
			}
			if sawDirect != direct {
				t.Errorf("a WriteBuffer without wait taken = %v, want %v", sawDirect, direct)
			}
		})
	}
}

// Under a write rate limit the chunks handed over never exceed the
// allowance, and the actor never offers them without waiting.
func TestBufferWriterRateLimit(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const burst = 4 << 10
	cfg, err := limiter.NewConfig(1<<20, 1<<20, burst, burst, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetRateLimit(cfg); err != nil {
		t.Fatal(err)
	}
	// 128 small chunks (each Write is its own 512-byte chunk) and one
	// that is larger than the burst, which must be cut to size: its head
	// goes over as a chunk of its own, never as a byte write.
	var want []byte
	for i := range 128 {
		p := bytes.Repeat([]byte{byte(i)}, 500)
		want = append(want, p...)
		b.Write(p)
	}
	big := testkit.Pattern(10000)
	want = append(want, big...)
	b.Write(big)
	got, calls := tr.waitGot(t, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the transport got %d bytes that differ from the %d written", len(got), len(want))
	}
	kinds := map[string]bool{}
	for _, c := range calls {
		kinds[c.kind] = true
		if c.n > burst {
			t.Errorf("a %s write of %d bytes, over the write burst %d", c.kind, c.n, burst)
		}
		if c.kind == "buffer" && !c.wait {
			t.Errorf("a WriteBuffer without wait under a rate limit")
		}
	}
	if !kinds["buffer"] || kinds["bytes"] {
		t.Errorf("calls of kinds %v, want chunk hand-overs only (one way out)", kinds)
	}
}
