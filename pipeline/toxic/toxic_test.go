package toxic_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/pipeline"
	"github.com/bevgo/bev/pipeline/toxic"
)

func newSet(t testing.TB, toxics ...toxic.Toxic) *toxic.Set {
	t.Helper()
	s := new(toxic.Set)
	for _, tx := range toxics {
		must(t, s.Add(tx))
	}
	return s
}

func TestLatencyDelaysEachChunk(t *testing.T) {
	for _, stream := range []toxic.Stream{toxic.Downstream, toxic.Upstream} {
		t.Run(stream.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, newSet(t, toxic.New("lat", stream, &toxic.Latency{Latency: 50})))
				from, to := r.peer, r.f
				if stream == toxic.Upstream {
					from, to = r.f, r.peer
				}
				start := time.Now()
				must(t, from.Write([]byte("a")))
				time.Sleep(10 * time.Millisecond)
				must(t, from.Write([]byte("b")))
				got, err := collect(t, to, 2, time.Minute)
				must(t, err)
				if string(joined(got)) != "ab" {
					t.Fatalf("got %q, want %q", joined(got), "ab")
				}
				if d := got[0].at.Sub(start); d != 50*time.Millisecond {
					t.Errorf("first chunk after %v, want 50ms", d)
				}
				if d := got[len(got)-1].at.Sub(start); d != 60*time.Millisecond {
					t.Errorf("second chunk after %v, want 60ms", d)
				}
			})
		})
	}
}

func TestLatencyJitterKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 50, Jitter: 20})))
		const n = 200
		sent := make([]time.Time, n)
		go func() {
			for i := range n {
				sent[i] = time.Now()
				r.peer.Write([]byte{byte(i)})
				time.Sleep(time.Millisecond)
			}
		}()
		got, err := collect(t, r.f, n, time.Minute)
		must(t, err)
		i := 0
		for _, a := range got {
			for _, c := range a.p {
				if int(c) != i%256 {
					t.Fatalf("byte %d is %d: order lost", i, c)
				}
				d := a.at.Sub(sent[i])
				// A chunk waits at least its own delay (30..70 ms) and
				// never passes the one before it.
				if d < 30*time.Millisecond || d > 70*time.Millisecond+n*time.Millisecond {
					t.Errorf("byte %d delayed %v", i, d)
				}
				i++
			}
		}
	})
}

func TestLatencyEOFAfterHeldBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 100})))
		start := time.Now()
		must(t, r.peer.Write([]byte("last words")))
		must(t, r.peer.Flush(actor.Write, actor.Finished))
		got, err := waitEnd(t, r.f, time.Minute)
		if string(got) != "last words" || !errors.Is(err, io.EOF) {
			t.Fatalf("got %q, %v; want %q, EOF", got, err, "last words")
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("EOF after %v, want 100ms", d)
		}
	})
}

func TestLatencyHalfCloseAfterHeldBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("lat", toxic.Upstream, &toxic.Latency{Latency: 100})))
		must(t, r.f.Write([]byte("last words")))
		must(t, r.f.Flush(actor.Write, actor.Finished))
		got, err := waitEnd(t, r.peer, time.Minute)
		if string(got) != "last words" || !errors.Is(err, io.EOF) {
			t.Fatalf("got %q, %v; want %q, EOF", got, err, "last words")
		}
	})
}

// TestLatencyBackpressure: a latency toxic over a fast stream holds no
// more than the room under the read high watermark; the rest waits at the
// writer.
func TestLatencyBackpressure(t *testing.T) {
	for _, high := range []int{64 << 10, 0} {
		t.Run(fmt.Sprint("high=", high), func(t *testing.T) { testLatencyBackpressure(t, high) })
	}
}

func testLatencyBackpressure(t *testing.T, high int) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		peer, near, err := actor.NewPair(base, actor.CloseOnFree)
		must(t, err)
		set := newSet(t, toxic.New("lat", toxic.Downstream, &toxic.Latency{Latency: 1000}))
		st := set.NewStage(toxic.Downstream, toxic.StageConfig{Clock: base.Clock()})
		f, err := pipeline.NewFilter(near, st, nil, actor.CloseOnFree)
		must(t, err)
		st.SetWake(func() { f.Flush(actor.Read, actor.Normal) })
		bound := high
		if high == 0 {
			bound = toxic.DefaultHold
		}
		must(t, f.SetWatermark(actor.Read, 0, high))
		must(t, f.Enable(actor.Read))
		const total = 8 << 20
		must(t, peer.Write(make([]byte, total)))
		held := func() (n int) {
			f.Do(func(*actor.Session) { n = st.Buffered() })
			return n
		}
		for range 5 {
			time.Sleep(300 * time.Millisecond)
			synctest.Wait()
			if h := held(); h > bound {
				t.Fatalf("stage holds %d bytes, above its bound %d", h, bound)
			}
		}
		if n := peer.OutputLen(); n < total-2<<20 {
			t.Errorf("the writer still holds %d bytes: backpressure did not reach it", n)
		}
		// Nothing is lost: drain everything.
		got := 0
		must(t, f.SetWatermark(actor.Read, 0, 0))
		in := f.In()
		for got < total {
			got += len(<-in)
		}
	})
}

func TestBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("bw", toxic.Upstream, &toxic.Bandwidth{Rate: 100})))
		const total = 1_000_000 // 10 s at 100 KB/s
		start := time.Now()
		must(t, r.f.Write(make([]byte, total)))
		got, err := collect(t, r.peer, total, time.Minute)
		must(t, err)
		d := got[len(got)-1].at.Sub(start)
		if d < 9800*time.Millisecond || d > 10200*time.Millisecond {
			t.Errorf("%d bytes at 100 KB/s took %v, want 10s ±2%%", total, d)
		}
	})
}

// The bandwidth toxic's bucket refills on the Base's clock, as its timer
// runs: each 100 ms step of an injected clock lets one tick's bytes (100
// at 1 KB/s) through, however little real time passes.
func TestBandwidthFollowsBaseClock(t *testing.T) {
	clock := testbev.NewManualClock()
	r := newRigOn(t, testbev.NewBaseClock(t, clock), newSet(t, toxic.New("bw", toxic.Upstream, &toxic.Bandwidth{Rate: 1})))
	const ticks = 5
	must(t, r.f.Write(make([]byte, ticks*100)))
	in := r.peer.In()
	for step := 1; step <= ticks; step++ {
		testbev.WaitArmed(t, clock) // the stage waits for the next tick
		clock.Advance(100 * time.Millisecond)
		got := 0
		for got < 100 {
			select {
			case p := <-in:
				got += len(p)
			case <-time.After(5 * time.Second):
				t.Fatalf("step %d: %d bytes within 5s of a tick, want 100", step, got)
			}
		}
		if got != 100 {
			t.Fatalf("step %d: %d bytes at a tick, want 100", step, got)
		}
	}
}

func TestSlicer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("sl", toxic.Downstream, &toxic.Slicer{AverageSize: 64, SizeVariation: 16, Delay: 10})))
		data := make([]byte, 64<<10)
		for i := range data {
			data[i] = byte(rand.IntN(256))
		}
		must(t, r.peer.Write(data))
		got, err := collect(t, r.f, len(data), time.Minute)
		must(t, err)
		if !bytes.Equal(joined(got), data) {
			t.Fatal("slicer lost or reordered bytes")
		}
		for i, a := range got {
			if len(a.p) > 64+16 {
				t.Fatalf("piece %d is %d bytes, above 80", i, len(a.p))
			}
		}
		if len(got) < len(data)/80 {
			t.Errorf("%d pieces, want at least %d", len(got), len(data)/80)
		}
	})
}

func TestLimitData(t *testing.T) {
	t.Run("downstream", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, newSet(t, toxic.New("lim", toxic.Downstream, &toxic.LimitData{Bytes: 1000})))
			must(t, r.peer.Write(make([]byte, 5000)))
			got, err := waitEnd(t, r.f, time.Minute)
			// A pair cannot shut its read side: the filter fails.
			if len(got) != 1000 || !errors.Is(err, toxic.ErrClosed) {
				t.Fatalf("got %d bytes, %v; want 1000, ErrClosed", len(got), err)
			}
			// The connection ends both ways: the peer reads EOF.
			if got, err := waitEnd(t, r.peer, time.Minute); len(got) != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("peer: got %d bytes, %v; want EOF", len(got), err)
			}
		})
	})
	t.Run("upstream", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, newSet(t, toxic.New("lim", toxic.Upstream, &toxic.LimitData{Bytes: 1000})))
			must(t, r.f.Write(make([]byte, 400)))
			must(t, r.f.Write(make([]byte, 5000)))
			got, err := waitEnd(t, r.peer, time.Minute)
			if len(got) != 1000 || !errors.Is(err, io.EOF) {
				t.Fatalf("got %d bytes, %v; want 1000, EOF", len(got), err)
			}
		})
	})
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("to", toxic.Downstream, &toxic.Timeout{Timeout: 100})))
		start := time.Now()
		must(t, r.peer.Write([]byte("dropped")))
		got, err := waitEnd(t, r.f, time.Minute)
		if len(got) != 0 || !errors.Is(err, toxic.ErrClosed) {
			t.Fatalf("got %q, %v; want nothing, ErrClosed", got, err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("closed after %v, want 100ms", d)
		}
	})
	t.Run("zero", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, newSet(t, toxic.New("to", toxic.Downstream, &toxic.Timeout{})))
			must(t, r.peer.Write([]byte("dropped")))
			in := r.f.In()
			select {
			case p, ok := <-in:
				t.Fatalf("got %q, %v through a timeout toxic", p, ok)
			case <-time.After(time.Hour):
			}
			// Removing it closes the connection, as toxiproxy's Cleanup
			// does: the filter's read side cannot be shut over a pair,
			// so it fails with ErrClosed, and the peer reads EOF.
			must(t, r.set.Remove("to"))
			if got, err := waitEnd(t, r.f, time.Minute); len(got) != 0 || !errors.Is(err, toxic.ErrClosed) {
				t.Fatalf("after removal: got %q, %v; want nothing, ErrClosed", got, err)
			}
			if got, err := waitEnd(t, r.peer, time.Minute); len(got) != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("peer after removal: got %q, %v; want nothing, EOF", got, err)
			}
		})
	})
}

func TestResetPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("rst", toxic.Upstream, &toxic.ResetPeer{Timeout: 100})))
		start := time.Now()
		must(t, r.f.Write([]byte("x")))
		<-r.f.Done()
		if err := r.f.Err(); !errors.Is(err, syscall.ECONNRESET) || !errors.Is(err, toxic.ErrReset) {
			t.Fatalf("Err() = %v, want ECONNRESET", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("reset after %v, want 100ms", d)
		}
		if _, err := waitEnd(t, r.peer, time.Minute); err == nil {
			t.Errorf("peer saw a clean end, want an error")
		}
	})
}

func TestSlowClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, newSet(t, toxic.New("sc", toxic.Downstream, &toxic.SlowClose{Delay: 200})))
		start := time.Now()
		must(t, r.peer.Write([]byte("bye")))
		must(t, r.peer.Flush(actor.Write, actor.Finished))
		in := r.f.In()
		if p := <-in; string(p) != "bye" || time.Since(start) != 0 {
			t.Fatalf("got %q after %v, want %q at once", p, time.Since(start), "bye")
		}
		if _, ok := <-in; ok {
			t.Fatal("more data")
		}
		if d := time.Since(start); d != 200*time.Millisecond || !errors.Is(r.f.Err(), io.EOF) {
			t.Errorf("EOF (%v) after %v, want 200ms", r.f.Err(), d)
		}
	})
}

func TestToxicity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conns = 400
		for _, tc := range []struct {
			toxicity float64
			lo, hi   int
		}{{0, 0, 0}, {1, conns, conns}, {0.5, conns/2 - 60, conns/2 + 60}} {
			set := newSet(t, toxic.Toxic{Name: "lat", Stream: toxic.Downstream, Toxicity: tc.toxicity, Kind: &toxic.Latency{Latency: 10}})
			delayed := 0
			for range conns {
				st := set.NewStage(toxic.Downstream, toxic.StageConfig{})
				var src, dst actor.Buffer
				src.Write([]byte("x"))
				st.Process(&dst, &src, -1, actor.Normal)
				if dst.Len() == 0 {
					delayed++
				}
				st.Close()
			}
			if delayed < tc.lo || delayed > tc.hi {
				t.Errorf("toxicity %v: %d of %d connections delayed, want %d..%d", tc.toxicity, delayed, conns, tc.lo, tc.hi)
			}
		}
	})
}
