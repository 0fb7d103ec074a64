// Tests of NewFilter's documented contract: what a failing stage does,
// how the stages are called (Finished, limits), which events of the
// underlying are passed on, the constructor's errors, and Close.

package pipeline_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testconn"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// A stage that panics, one that returns an unknown result and one that
// fails each close only their own filter, with an Error event carrying
// the cause; a filter beside them carries on, and the underlying of the
// failed one is closed (CloseOnFree), so its peer reads EOF.
func TestFilterStageFailures(t *testing.T) {
	tests := []struct {
		name  string
		stage pipeline.StageFunc
		want  error
	}{
		{"panic", func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
			panic(errStage)
		}, actor.ErrPanic},
		{"unknown result", func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
			return 7, nil
		}, actor.ErrInvalid},
		{"error", func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
			return pipeline.Failed, errStage
		}, errStage},
	}
	for _, tc := range tests {
		for _, dir := range []string{"input", "output"} {
			t.Run(tc.name+"/"+dir, func(t *testing.T) {
				base := testbev.NewBase(t)
				u1, u2 := newLink(t, base, "pair", 0)
				o1, o2 := newLink(t, base, "pair", 0)
				var in, out pipeline.Stage
				if dir == "input" {
					in = tc.stage
				} else {
					out = tc.stage
				}
				bad, err := pipeline.NewFilter(u1, in, out, actor.CloseOnFree)
				if err != nil {
					t.Fatalf("NewFilter = %v", err)
				}
				good, err := pipeline.NewFilter(o1, pipeline.PassThrough(), pipeline.PassThrough(), actor.CloseOnFree)
				if err != nil {
					t.Fatalf("NewFilter = %v", err)
				}
				defer closeAll(t, bad, good, u2, o2)
				l := newEventLog()
				bad.SetCallbacks(actor.Callbacks{Event: l.callback})
				peer := newEventLog()
				u2.SetCallbacks(actor.Callbacks{Event: peer.callback})
				u2.Enable(actor.Read)
				if dir == "input" {
					bad.Enable(actor.Read)
					u2.Write([]byte("boom"))
				} else {
					bad.Write([]byte("boom"))
				}
				e := testkit.Recv(t, l.c, "the Error event")
				if e.Event&actor.Error == 0 || !errors.Is(e.Err, tc.want) {
					t.Fatalf("event %v %v, want Error with %v", e.Event, e.Err, tc.want)
				}
				if tc.name == "panic" && !errors.Is(e.Err, errStage) {
					t.Errorf("panic cause %v does not carry the panic value", e.Err)
				}
				testkit.Recv(t, bad.Done(), "the failed filter to stop")
				if pe := testkit.Recv(t, peer.c, "the peer's EOF"); pe.Event != actor.Reading|actor.EOF {
					t.Errorf("peer event %v %v, want Reading|EOF", pe.Event, pe.Err)
				}
				// The filter beside it still works.
				got := make(chan []byte, 1)
				o2.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
					got <- bytes.Clone(s.Input().Pullup(-1))
					s.Input().Drain(s.Input().Len())
				}})
				o2.Enable(actor.Read)
				good.Write([]byte("alive"))
				if p := testkit.Recv(t, got, "the other filter's bytes"); string(p) != "alive" {
					t.Errorf("other filter delivered %q, want %q", p, "alive")
				}
			})
		}
	}
}

// recordStage records the modes and limits it is called with, and moves
// its input unchanged.
type recordStage struct {
	mu     sync.Mutex // guards following
	modes  []actor.FlushMode
	limits []int
}

func (r *recordStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
	r.mu.Lock()
	r.modes = append(r.modes, mode)
	r.limits = append(r.limits, limit)
	r.mu.Unlock()
	return pipeline.PassThrough().Process(dst, src, limit, mode)
}

func (r *recordStage) seen() ([]actor.FlushMode, []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]actor.FlushMode(nil), r.modes...), append([]int(nil), r.limits...)
}

func countMode(modes []actor.FlushMode, m actor.FlushMode) int {
	n := 0
	for _, x := range modes {
		if x == m {
			n++
		}
	}
	return n
}

// Flush(Write, Finished) calls the output stage even with nothing
// buffered, then finishes the underlying: the far end reads EOF. On the
// far side EOF calls the input stage with Finished once, and EOF comes
// after every byte the stage produced.
func TestFilterFinished(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, 0)
			out, in := &recordStage{}, &recordStage{}
			f1, err := pipeline.NewFilter(u1, nil, out, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			f2, err := pipeline.NewFilter(u2, in, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, f1, f2)
			var all bytes.Buffer
			eof := make(chan string, 1)
			f2.SetCallbacks(actor.Callbacks{
				Read:  func(s *actor.Session) { s.Input().WriteTo(&all) },
				Event: func(s *actor.Session, ev actor.Event, err error) { eof <- ev.String() + " " + all.String() },
			})
			f2.Enable(actor.Read)
			f1.Write([]byte("last words"))
			if err := f1.Flush(actor.Write, actor.Finished); err != nil {
				t.Fatalf("Flush = %v", err)
			}
			if got := testkit.Recv(t, eof, "EOF at the far end"); got != "Reading|EOF last words" {
				t.Errorf("far end saw %q, want %q", got, "Reading|EOF last words")
			}
			if modes, _ := out.seen(); countMode(modes, actor.Finished) == 0 {
				t.Errorf("output stage modes %v, want a Finished call", modes)
			}
			if modes, _ := in.seen(); countMode(modes, actor.Finished) != 1 {
				t.Errorf("input stage modes %v, want exactly one Finished call", modes)
			}
			// With nothing buffered at all, Finished still calls the stage.
			empty := &recordStage{}
			o1, o2 := newLink(t, base, kind, 0)
			f3, err := pipeline.NewFilter(o1, nil, empty, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, f3, o2)
			f3.Flush(actor.Write, actor.Finished)
			f3.Do(func(*actor.Session) {})
			if modes, _ := empty.seen(); countMode(modes, actor.Finished) == 0 {
				t.Errorf("output stage modes %v with nothing buffered, want a Finished call", modes)
			}
		})
	}
}

// The limits a stage gets come from the watermarks: an output stage never
// gets more than the room under the underlying's write high watermark
// (counting what it holds), an input stage never more than the room under
// the filter's read high watermark; data passes whole through a stack.
func TestFilterLimits(t *testing.T) {
	for _, kind := range linkKinds {
		t.Run(kind, func(t *testing.T) {
			base := testbev.NewBase(t)
			u1, u2 := newLink(t, base, kind, 0)
			u1.SetWatermark(actor.Write, 0, 3000)
			out := &recordStage{}
			mid, err := pipeline.NewFilter(u1, nil, out, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			mid.SetWatermark(actor.Write, 0, 5000)
			topOut := &recordStage{}
			top, err := pipeline.NewFilter(mid, nil, topOut, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			in := &recordStage{}
			rf, err := pipeline.NewFilter(u2, in, nil, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("NewFilter = %v", err)
			}
			defer closeAll(t, top, rf)
			rf.SetWatermark(actor.Read, 0, 2000)
			var all bytes.Buffer
			done := make(chan struct{})
			want := bytes.Repeat(testkit.Pattern(1000), 200)
			rf.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				if s.Input().Len() > 2000 {
					t.Errorf("filter input holds %d bytes, read high mark 2000", s.Input().Len())
				}
				s.Input().WriteTo(&all)
				if all.Len() == len(want) {
					close(done)
				}
			}})
			rf.Enable(actor.Read)
			top.Write(want)
			testkit.Recv(t, done, "all bytes through the stack")
			if !bytes.Equal(all.Bytes(), want) {
				t.Fatalf("received bytes differ from those written")
			}
			check := func(name string, r *recordStage, max int) {
				_, limits := r.seen()
				for _, l := range limits {
					if l < 0 || l > max {
						t.Errorf("%s stage got limit %d, want 0..%d", name, l, max)
						return
					}
				}
			}
			check("mid output", out, 3000)
			check("top output", topOut, 5000)
			check("input", in, 2000)
		})
	}
}

// The underlying's Connected and Timeout reach the filter's event callback.
func TestFilterForwardsEvents(t *testing.T) {
	base := testbev.NewBase(t)
	ln := testconn.Listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	u, err := actor.New(base, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	f, err := pipeline.NewFilter(u, nil, nil, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	defer closeAll(t, f)
	l := newEventLog()
	f.SetCallbacks(actor.Callbacks{Event: l.callback})
	err = u.Connect(context.Background(), func(ctx context.Context) (actor.Transport, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	})
	if err != nil {
		t.Fatalf("Connect = %v", err)
	}
	if e := testkit.Recv(t, l.c, "Connected"); e.Event != actor.Connected {
		t.Errorf("event %v %v, want Connected", e.Event, e.Err)
	}
	if f.Conn() == nil || f.Conn() != u.Conn() {
		t.Errorf("Conn() = %v, want the underlying's %v", f.Conn(), u.Conn())
	}
	peer := testkit.Recv(t, accepted, "the accepted connection")
	defer peer.Close()
	u.SetTimeouts(50e6, 0) // 50 ms
	f.Enable(actor.Read)   // the filter reads, so the underlying does
	if e := testkit.Recv(t, l.c, "Timeout"); e.Event != actor.Timeout|actor.Reading {
		t.Errorf("event %v %v, want Timeout|Reading", e.Event, e.Err)
	}
}

func TestNewFilterErrors(t *testing.T) {
	if _, err := pipeline.NewFilter(nil, nil, nil, 0); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("NewFilter(nil) = %v, want ErrInvalid", err)
	}
	base := testbev.NewBase(t)
	u1, u2 := newLink(t, base, "pair", 0)
	closeAll(t, u1, u2)
	if _, err := pipeline.NewFilter(u1, nil, nil, 0); !errors.Is(err, pipeline.ErrClosed) {
		t.Errorf("NewFilter(closed) = %v, want ErrClosed", err)
	}
	a, b := newLink(t, base, "pair", 0)
	defer closeAll(t, a, b)
	if _, err := pipeline.NewFilter(a, nil, nil, 1<<20); !errors.Is(err, actor.ErrInvalid) {
		t.Errorf("NewFilter(bad options) = %v, want actor.ErrInvalid", err)
	}
	if _, err := pipeline.NewTLSClient(nil, &tls.Config{}, pipeline.TLSOptions{}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("NewTLSClient(nil) = %v, want ErrInvalid", err)
	}
	if _, err := pipeline.NewTLSServer(a, nil, pipeline.TLSOptions{}); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("NewTLSServer(nil config) = %v, want ErrInvalid", err)
	}
}

// Closing a filter without CloseOnFree leaves the underlying open, with
// its callbacks cleared and reading disabled, for another owner.
func TestFilterCloseKeepsUnderlying(t *testing.T) {
	base := testbev.NewBase(t)
	u1, u2 := newLink(t, base, "pair", 0)
	defer closeAll(t, u1, u2)
	u1.SetWatermark(actor.Write, 100, 1000)
	f, err := pipeline.NewFilter(u1, nil, nil, 0)
	if err != nil {
		t.Fatalf("NewFilter = %v", err)
	}
	f.Enable(actor.Read)
	if err := f.Close(); err != nil {
		t.Fatalf("filter Close = %v", err)
	}
	if u1.Callbacks().Read != nil || u1.Enabled()&actor.Read != 0 {
		t.Errorf("underlying keeps the filter's callbacks or reading after the filter closed")
	}
	if low, high, _ := u1.Watermark(actor.Write); low != 100 || high != 1000 {
		t.Errorf("underlying write watermarks (%d, %d) after the filter closed, want (100, 1000)", low, high)
	}
	got := make(chan string, 1)
	u1.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		got <- string(s.Input().Pullup(-1))
		s.Input().Drain(s.Input().Len())
	}})
	u1.Enable(actor.Read)
	u2.Write([]byte("still here"))
	if s := testkit.Recv(t, got, "the underlying to read"); s != "still here" {
		t.Errorf("underlying read %q, want %q", s, "still here")
	}
}
