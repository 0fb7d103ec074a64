package pipeline_test

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// Tests of filter.go's flow control: the read high watermarks of a filter
// and its underlying (libevent's case 35, data stuck), Flush(Read) bounded
// by them, when a filter's view pauses its underlying, and bytes handed
// down while the underlying writes.

// Case 35 (bufferevent_filter_data_stuck, libevent #362): pair ends with
// read marks (0, 4096), a filter over one end whose input stage adds a
// 20-byte header once and then moves what fits, filter read marks
// (0, 4096); 4096 bytes in give exactly 4116 out, none left stuck.
func TestFilterDataStuck(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, actor.DeferCallbacks)
			for _, u := range []*actor.Bufferevent{u1, u2} {
				u.SetWatermark(actor.Read, 0, 4096)
			}
			header := false
			in := pipeline.StageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
				if !header {
					header = true
					dst.Write(make([]byte, 20))
					limit -= 20
				}
				n := src.Len()
				if limit >= 0 && limit < n {
					n = limit
				}
				p := make([]byte, n)
				src.Read(p)
				dst.Write(p)
				return pipeline.OK, nil
			})
			f, err := pipeline.NewFilter(u2, in, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, u1, f)
			f.SetWatermark(actor.Read, 0, 4096)
			total := make(chan int, 64)
			f.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				n := s.Input().Len()
				s.Input().Drain(n)
				total <- n
			}})
			f.Enable(actor.Read)
			u1.Write(make([]byte, 4096))
			got := 0
			for got < 4116 {
				got += testkit.Recv(t, total, "the filter's input")
			}
			if got != 4116 {
				t.Errorf("read %d bytes, want 4116", got)
			}
		})
	}
}

// TestFilterFlushReadBounded: Flush(Read, Finished) and Flush(Read,
// Flush) on a filter with a bomb waiting still fill the input only up to
// the read high watermark; the rest follows as the user drains.
func TestFilterFlushReadBounded(t *testing.T) {
	const n = 16 << 20
	for _, mode := range []actor.FlushMode{actor.Flush, actor.Finished} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			wire := bomb(t, pipeline.FormatGzip, n)
			base := testbev.NewBase(t)
			a, b := newLink(t, base, "pair", 0)
			f, err := pipeline.NewFilter(b, pipeline.Gunzip(), nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, f, a)
			f.SetWatermark(actor.Read, 0, bombHigh)
			var draining atomic.Bool
			var got int64
			full := make(chan struct{}, 1)
			done := make(chan struct{}, 1)
			f.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				if !draining.Load() {
					testkit.Signal(full)
					return
				}
				got += int64(s.Input().Len())
				s.Input().Drain(s.Input().Len())
				if got >= n {
					testkit.Signal(done)
				}
			}})
			f.Enable(actor.Read)
			a.Write(wire)
			testkit.Recv(t, full, "the first input")
			if err := f.Flush(actor.Read, mode); err != nil {
				t.Fatalf("Flush = %v", err)
			}
			var in int
			f.Do(func(s *actor.Session) { in = s.Input().Len() })
			if in > bombHigh+bombChunk {
				t.Fatalf("after Flush(Read, %v) the input holds %d bytes, over the high watermark %d plus a chunk", mode, in, bombHigh)
			}
			draining.Store(true)
			f.Do(func(s *actor.Session) {
				got += int64(s.Input().Len())
				s.Input().Drain(s.Input().Len())
			})
			testkit.Recv(t, done, "the rest of the stream")
			if got != n {
				t.Errorf("read %d bytes, want %d", got, n)
			}
		})
	}
}

// A filter's view pauses an underlying that has no read high watermark
// only once it holds two of the filter's largest reads, not at
// DefaultChannelHighWatermark: a hand-over of actor.PairMaxIO then never
// stops and restarts the underlying's reading (a turn of its actor per
// hand-over). The bytes the filter cannot take yet (its own read high
// watermark is 1 byte) still stop somewhere: here in the view, which
// takes all 300 KiB, so the sender's output drains completely.
func TestFilterViewHoldsTwoHandovers(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	f, err := pipeline.NewFilter(b, nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	defer closeAll(t, a, f)
	f.SetWatermark(actor.Read, 0, 1)
	f.Enable(actor.Read)
	drained := make(chan struct{}, 1)
	a.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		if s.Output().Len() == 0 {
			testkit.Signal(drained)
		}
	}})
	const n = 300 << 10
	if n <= actor.DefaultChannelHighWatermark || n >= 2*actor.PairMaxIO {
		t.Fatalf("test size %d must lie between the default mark and two hand-overs", n)
	}
	a.Write(testkit.Pattern(n))
	testkit.Recv(t, drained, "the sender's output to drain into the filter's view")
	if b.Enabled()&actor.Read == 0 {
		t.Errorf("the underlying's reading was paused with %d bytes in the view, want it on below %d", n, 2*actor.PairMaxIO)
	}
	if got := f.InputLen(); got > 1+actor.PairMaxIO {
		t.Errorf("filter input = %d bytes, want at most its read high watermark plus one read", got)
	}
}

// Bytes a filter hands down while the underlying's write is under way are
// taken by the underlying's next write callback, which that write's
// completion runs, instead of by a Trigger of their own: here the pair's
// far end does not read, so the first 100 KiB stay in flight, and the
// next 100 KiB must still arrive once it does.
func TestFilterHandsDownWhileUnderlyingWrites(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	f, err := pipeline.NewFilter(a, nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	defer closeAll(t, f, b)
	const n = 100 << 10
	want := testkit.Pattern(2 * n)
	var (
		mu  sync.Mutex
		got []byte
	)
	done := make(chan struct{}, 1)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		mu.Lock()
		defer mu.Unlock()
		p := make([]byte, s.Input().Len())
		s.Input().Read(p)
		if got = append(got, p...); len(got) == len(want) {
			testkit.Signal(done)
		}
	}})
	f.Write(want[:n])
	// a takes the bytes and hands them to its writer, which waits for b
	// to read; a's published pending output then counts them.
	end := time.Now().Add(testkit.WaitTime)
	for a.OutputLen() != n {
		if time.Now().After(end) {
			t.Fatalf("a's pending output = %d, want %d", a.OutputLen(), n)
		}
		if err := a.Do(func(*actor.Session) {}); err != nil {
			t.Fatalf("a.Do = %v", err)
		}
	}
	f.Write(want[n:])
	// f hands the bytes down in the turn after the one that takes them:
	// the second Do runs after that.
	for range 2 {
		if err := f.Do(func(*actor.Session) {}); err != nil {
			t.Fatalf("f.Do = %v", err)
		}
	}
	if err := b.Enable(actor.Read); err != nil {
		t.Fatalf("Enable = %v", err)
	}
	testkit.Recv(t, done, "all 200 KiB at the far end")
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Fatalf("the far end read %d bytes that differ from the %d written", len(got), len(want))
	}
}
