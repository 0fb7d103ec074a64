package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

var errLater = errors.New("x filter: only the first call succeeds")

// xOut is libevent's bufferevent_output_filter: it puts 'x' before every
// byte and succeeds only on its first call. With self set (the disable
// variant) it writes "-" into its own filter during that call, which must
// not re-enter it.
type xOut struct {
	calls  atomic.Int32
	inside atomic.Bool
	self   atomic.Pointer[actor.Bufferevent]
	t      testing.TB
}

func (x *xOut) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	if x.inside.Swap(true) {
		x.t.Errorf("xOut.Process re-entered")
	}
	defer x.inside.Store(false)
	if x.calls.Add(1) > 1 {
		return pipeline.Failed, errLater
	}
	p := make([]byte, src.Len())
	src.Read(p)
	for _, c := range p {
		dst.Write([]byte{'x', c})
	}
	if b := x.self.Load(); b != nil {
		if err := b.Write([]byte("-")); err != nil {
			x.t.Errorf("Write(-) from inside the stage = %v", err)
		}
		if x.calls.Load() != 1 {
			x.t.Errorf("writing from inside the stage called it again")
		}
	}
	return pipeline.OK, nil
}

// xIn is libevent's bufferevent_input_filter: it expects "x?" pairs and
// skips '-' bytes.
func xIn(t testing.TB) pipeline.Stage {
	return pipeline.StageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
		p := src.Pullup(-1)
		i, out := 0, []byte(nil)
		for i < len(p) {
			if p[i] == '-' {
				i++
				continue
			}
			if i+1 >= len(p) {
				break
			}
			if p[i] != 'x' {
				t.Errorf("xIn: byte %q where 'x' was expected", p[i])
			}
			out = append(out, p[i+1])
			i += 2
		}
		src.Drain(i)
		dst.Write(out)
		if i == 0 {
			return pipeline.NeedMore, nil
		}
		return pipeline.OK, nil
	})
}

// eventLog records a bufferevent's events from its event callback.
type eventLog struct {
	c chan actor.EventInfo
}

func newEventLog() *eventLog { return &eventLog{c: make(chan actor.EventInfo, 64)} }

func (l *eventLog) callback(s *actor.Session, ev actor.Event, err error) {
	l.c <- actor.EventInfo{Event: ev, Err: err}
}

// none reports events logged so far.
func (l *eventLog) drain() []actor.EventInfo { return testkit.Pending(l.c) }

// Cases 12–15 (bufferevent_filters, _pair_filters, _filters_disable,
// _pair_filters_disable): 8333 bytes through an 'x'-prefixing output
// filter and an "x?" input filter, and the identity of Underlying and
// Conn. Deliberate difference in the disable variants: the '-' the filter
// writes into itself makes its second call fail, and a failing stage
// closes the filter with an Error event carrying the cause (libevent
// ignores BEV_ERROR, so its output never empties and test_ok ends at 4).
func TestFilters(t *testing.T) {
	for _, kind := range linkKinds {
		for _, disable := range []bool{false, true} {
			name := kind
			if disable {
				name += "/disable"
			}
			t.Run(name, func(t *testing.T) { testFilters(t, kind, disable) })
		}
	}
}

func testFilters(t *testing.T, kind string, disable bool) {
	base := testbev.NewBase(t)
	u1, u2 := newLink(t, base, kind, 0)
	out := &xOut{t: t}
	bev1, err := pipeline.NewFilter(u1, nil, out, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	bev2, err := pipeline.NewFilter(u2, xIn(t), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	defer closeAll(t, bev1, bev2)
	if disable {
		out.self.Store(bev1)
	}
	if got := bev1.Underlying(); got != u1 {
		t.Errorf("Underlying() = %p, want %p", got, u1)
	}
	if got, want := bev1.Conn(), u1.Conn(); got != want {
		t.Errorf("Conn() = %v, want the underlying's %v", got, want)
	}
	if kind == "tcp" && bev1.Conn() == nil {
		t.Errorf("Conn() = nil over TCP, want the TCP connection")
	}

	want := testkit.Pattern(8333)
	emptied := make(chan struct{}, 1)
	ev1, ev2 := newEventLog(), newEventLog()
	bev1.SetCallbacks(actor.Callbacks{
		Write: func(s *actor.Session) {
			if s.Output().Len() == 0 {
				testkit.Signal(emptied)
			}
		},
		Event: ev1.callback,
	})
	got := make(chan []byte, 1)
	var all bytes.Buffer
	bev2.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			s.Input().WriteTo(&all)
			// In the disable variant all 8333 bytes may still arrive
			// before bev1 fails (its first write batch can hold all
			// 16666 filtered bytes), and bev2 must keep reading to see
			// the EOF that follows; it reports what it read from there.
			if !disable && all.Len() == len(want) {
				s.Disable(actor.Read)
				got <- bytes.Clone(all.Bytes())
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			ev2.callback(s, ev, err)
			if ev&(actor.EOF|actor.Error) != 0 {
				got <- bytes.Clone(all.Bytes())
			}
		},
	})
	bev2.Enable(actor.Read)
	if err := bev1.Write(want); err != nil {
		t.Fatalf("Write = %v", err)
	}

	if !disable {
		if p := testkit.Recv(t, got, "8333 bytes"); !bytes.Equal(p, want) {
			t.Fatalf("read %d bytes, want the %d written", len(p), len(want))
		}
		testkit.Recv(t, emptied, "the write callback with an empty output")
		if n := out.calls.Load(); n != 1 {
			t.Errorf("output stage called %d times, want 1", n)
		}
		if evs := append(ev1.drain(), ev2.drain()...); len(evs) != 0 {
			t.Errorf("events %v, want none", evs)
		}
		return
	}
	e := testkit.Recv(t, ev1.c, "bev1's Error event")
	if e.Event&actor.Error == 0 || !errors.Is(e.Err, errLater) {
		t.Fatalf("bev1 event = %v %v, want Error with %v", e.Event, e.Err, errLater)
	}
	testkit.Recv(t, bev1.Done(), "bev1 to stop")
	if n := out.calls.Load(); n != 2 {
		t.Errorf("output stage called %d times, want 2", n)
	}
	// CloseOnFree closed u1, so bev2 reads a prefix of the data and EOF.
	if p := testkit.Recv(t, got, "bev2's EOF"); !bytes.HasPrefix(want, p) {
		t.Errorf("bev2 read %d bytes that are not a prefix of what was written", len(p))
	}
	if e := testkit.Recv(t, ev2.c, "bev2's event"); e.Event != actor.Reading|actor.EOF || e.Err != io.EOF {
		t.Errorf("bev2 event = %v %v, want Reading|EOF", e.Event, e.Err)
	}
}

// countStage wraps a stage and counts its calls.
type countStage struct {
	pipeline.Stage
	calls atomic.Int32
}

func (c *countStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	c.calls.Add(1)
	return c.Stage.Process(dst, src, limit, mode)
}

func (c *countStage) Buffered() int {
	if b, ok := c.Stage.(interface{ Buffered() int }); ok {
		return b.Buffered()
	}
	return 0
}

func (c *countStage) Close() error {
	if cl, ok := c.Stage.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Case 30 (bufferevent_zlib): a deflating output filter and an inflating
// input filter; 1800 + 6533 bytes, then Flush(Write, Finished): exactly
// 8333 bytes arrive, both stages ran, the writer saw an empty output, and
// no Error event. Our Finished also half-closes, so the reader then gets
// EOF (libevent's socket flush does nothing there).
func TestFilterZlib(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, 0)
			deflate := &countStage{Stage: pipeline.Zlib()}
			inflate := &countStage{Stage: pipeline.Unzlib()}
			bev1, err := pipeline.NewFilter(u1, nil, deflate, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			bev2, err := pipeline.NewFilter(u2, inflate, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, bev1, bev2)
			emptied := make(chan struct{}, 1)
			ev1, ev2 := newEventLog(), newEventLog()
			bev1.SetCallbacks(actor.Callbacks{
				Write: func(s *actor.Session) {
					if s.Output().Len() == 0 {
						testkit.Signal(emptied)
					}
				},
				Event: ev1.callback,
			})
			var all bytes.Buffer
			done := make(chan []byte, 1)
			bev2.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) { s.Input().WriteTo(&all) },
				Event: func(s *actor.Session, ev actor.Event, err error) {
					ev2.callback(s, ev, err)
					done <- bytes.Clone(all.Bytes())
				},
			})
			bev2.Enable(actor.Read)
			want := testkit.Pattern(8333)
			bev1.Write(want[:1800])
			bev1.Write(want[1800:])
			if err := bev1.Flush(actor.Write, actor.Finished); err != nil {
				t.Fatalf("Flush = %v", err)
			}
			if got := testkit.Recv(t, done, "bev2's EOF"); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, want the %d written", len(got), len(want))
			}
			if e := testkit.Recv(t, ev2.c, "bev2's event"); e.Event != actor.Reading|actor.EOF {
				t.Errorf("bev2 event = %v %v, want Reading|EOF", e.Event, e.Err)
			}
			testkit.Recv(t, emptied, "bev1's write callback with an empty output")
			if deflate.calls.Load() == 0 || inflate.calls.Load() == 0 {
				t.Errorf("stage calls: deflate %d, inflate %d, want both > 0", deflate.calls.Load(), inflate.calls.Load())
			}
			if evs := ev1.drain(); len(evs) != 0 {
				t.Errorf("bev1 events %v, want none", evs)
			}
		})
	}
}

// Case 33 (bufferevent_socket_filter_inactive): a filter with no options
// over a bufferevent that never had a transport closes cleanly, and so
// does the underlying afterwards.
func TestFilterInactive(t *testing.T) {
	base := testbev.NewBase(t)
	u, err := actor.New(base, nil, 0)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	f, err := pipeline.NewFilter(u, nil, nil, 0)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("filter Close = %v", err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("underlying Close = %v", err)
	}
}

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

// Drain of a filter with CloseOnFree pushes every byte down the chain and
// through the underlying before closing it (libevent #616: freeing a
// filter dropped what its underlying had not yet sent), here through two
// stacked filters to a slow reader.
func TestFilterDrain(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, 0)
			mid, err := pipeline.NewFilter(u1, nil, pipeline.Gzip(), actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			top, err := pipeline.NewFilter(mid, nil, pipeline.PassThrough(), actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			u1.SetWatermark(actor.Write, 0, 4096)
			mid.SetWatermark(actor.Write, 0, 4096)
			recvSide, err := pipeline.NewFilter(u2, pipeline.Gunzip(), nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, recvSide)
			recvSide.SetWatermark(actor.Read, 0, 1024) // a slow reader
			want := bytes.Repeat(testkit.Pattern(1000), 300)
			top.Write(want)
			var all bytes.Buffer
			done := make(chan actor.EventInfo, 1)
			recvSide.SetCallbacks(actor.Callbacks{
				Read:  func(s *actor.Session) { s.Input().WriteTo(&all) },
				Event: func(s *actor.Session, ev actor.Event, err error) { done <- actor.EventInfo{Event: ev, Err: err} },
			})
			recvSide.Enable(actor.Read)
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			if err := top.Drain(ctx); err != nil {
				t.Fatalf("Drain = %v", err)
			}
			for _, b := range []*actor.Bufferevent{top, mid, u1} {
				testkit.Recv(t, b.Done(), "the drained stack to close")
			}
			if e := testkit.Recv(t, done, "the reader's EOF"); e.Event != actor.Reading|actor.EOF {
				t.Fatalf("reader event = %v %v, want Reading|EOF", e.Event, e.Err)
			}
			if !bytes.Equal(all.Bytes(), want) {
				t.Fatalf("reader got %d bytes, want the %d written", all.Len(), len(want))
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

// Bytes go through stacked filters, whose views move whole chunks,
// exactly once and in order, pieces of every size mixed, and the far end
// reads EOF only after the last of them.
func TestStackedFiltersByteExact(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, 0)
			filter := func(u *actor.Bufferevent, in, out pipeline.Stage) *actor.Bufferevent {
				t.Helper()
				f, err := pipeline.NewFilter(u, in, out, actor.CloseOnFree)
				if err != nil {
					t.Fatalf("NewFilter = %v", err)
				}
				return f
			}
			pass := pipeline.PassThrough
			top := u1
			for _, out := range []pipeline.Stage{pass(), pipeline.Chain(pass(), pass(), pass()), nil, pass()} {
				top = filter(top, nil, out)
			}
			rf := u2
			for _, in := range []pipeline.Stage{pipeline.Chain(pass(), pass()), pass(), nil} {
				rf = filter(rf, in, nil)
			}
			defer closeAll(t, top, rf)
			var (
				mu  sync.Mutex
				got bytes.Buffer
			)
			eof := make(chan []byte, 1)
			rf.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					mu.Lock()
					s.Input().WriteTo(&got)
					mu.Unlock()
				},
				Event: func(s *actor.Session, ev actor.Event, err error) {
					if ev&(actor.EOF|actor.Error) != 0 {
						mu.Lock()
						eof <- bytes.Clone(got.Bytes())
						mu.Unlock()
					}
				},
			})
			rf.Enable(actor.Read)
			rng := rand.New(rand.NewPCG(1, 2))
			var want []byte
			for len(want) < 4<<20 {
				p := make([]byte, []int{1, 100, 4 << 10, 16 << 10, 64<<10 + 7, 200 << 10}[rng.IntN(6)])
				for i := range p {
					p[i] = byte(rng.Uint32())
				}
				want = append(want, p...)
				if rng.IntN(2) == 0 {
					top.Write(p)
				} else {
					var buf actor.Buffer
					buf.AppendOwned(p)
					top.WriteBuffer(&buf)
				}
			}
			top.Flush(actor.Write, actor.Finished)
			if got := testkit.Recv(t, eof, "EOF at the far end"); !bytes.Equal(got, want) {
				t.Fatalf("the far end read %d bytes that differ from the %d written", len(got), len(want))
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

// A receiving filter reads its view on its own goroutine (TryReadBuffer)
// rather than through a reader loop that waits on the underlying; it
// still learns that the underlying stopped when nothing reports it (the
// underlying closed directly, which sends no event): a Reading|Error
// wrapping ErrClosed, after the bytes that came before.
func TestFilterSeesUnderlyingStop(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	f, err := pipeline.NewFilter(b, nil, nil, 0)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	defer closeAll(t, a, f)
	type result struct {
		n   int
		ev  actor.Event
		err error
	}
	var n int
	ended := make(chan result, 1)
	got := make(chan struct{}, 1)
	f.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			n += s.Input().Len()
			s.Input().Drain(s.Input().Len())
			testkit.Signal(got)
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			ended <- result{n, ev, err}
		},
	})
	f.Enable(actor.Read)
	a.Write(testkit.Pattern(1000))
	testkit.Recv(t, got, "the first bytes through the filter")
	if err := b.Close(); err != nil {
		t.Fatalf("underlying Close = %v", err)
	}
	r := testkit.Recv(t, ended, "the filter's event after its underlying stopped")
	if r.ev != actor.Reading|actor.Error || !errors.Is(r.err, pipeline.ErrClosed) || r.n != 1000 {
		t.Errorf("event %v (%v) after %d bytes, want Reading|Error wrapping ErrClosed after 1000", r.ev, r.err, r.n)
	}
}
