package pipeline_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// Tests of filter.go's basic behaviour: bytes through filters over pairs
// and TCP, libevent's filter cases (12–15, the 'x' filters, and 30,
// zlib), and stacked filters that deliver every byte exactly once.

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
