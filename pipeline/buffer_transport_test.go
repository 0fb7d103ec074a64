package pipeline_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

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

// A Conn's buffer methods move chunks in and out of its bufferevent, within
// their limits, and refuse bad arguments.
func TestConnBufferMethods(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := newLink(t, base, "pair", 0)
	ca, err := pipeline.NewConn(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := pipeline.NewConn(b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	defer ca.Close()
	deadline := time.Now().Add(testkit.WaitTime)
	ca.SetDeadline(deadline)
	cb.SetDeadline(deadline)

	if _, err := ca.WriteBuffer(nil, true); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("WriteBuffer(nil) = %v, want ErrInvalid", err)
	}
	if _, err := cb.ReadBuffer(nil, 10); !errors.Is(err, pipeline.ErrInvalid) {
		t.Errorf("ReadBuffer(nil) = %v, want ErrInvalid", err)
	}
	var dst actor.Buffer
	if n, err := cb.ReadBuffer(&dst, 0); n != 0 || err != nil {
		t.Errorf("ReadBuffer(max 0) = %d, %v, want 0, nil", n, err)
	}

	want := testkit.Pattern(60 << 10) // under the view's write high watermark: nobody reads yet
	var src actor.Buffer
	src.AppendOwned(want[:30<<10])
	src.AppendOwned(want[30<<10:])
	if n, err := ca.WriteBuffer(&src, true); n != int64(len(want)) || err != nil || src.Len() != 0 {
		t.Fatalf("WriteBuffer = %d, %v (%d left), want %d, nil (0 left)", n, err, src.Len(), len(want))
	}
	var got []byte
	for len(got) < len(want) {
		n, err := cb.ReadBuffer(&dst, 7000)
		if err != nil {
			t.Fatalf("ReadBuffer after %d bytes = %v", len(got), err)
		}
		if n < 1 || n > 7000 || dst.Len() != n {
			t.Fatalf("ReadBuffer(max 7000) = %d with %d in dst, want 1..7000, all in dst", n, dst.Len())
		}
		got = append(got, make([]byte, n)...)
		dst.Read(got[len(got)-n:])
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read bytes differ from those written")
	}

	// Without wait, a view at its write high watermark takes what fits
	// and returns at once. b does not read, so a's output stays full.
	if err := a.SetWatermark(actor.Write, 0, 1000); err != nil {
		t.Fatal(err)
	}
	cb.SetReadDeadline(time.Now()) // nobody reads b's end any more
	src.Write(testkit.Pattern(8 << 10))
	var took int64
	for range 3 {
		n, err := ca.WriteBuffer(&src, false)
		if err != nil {
			t.Fatalf("WriteBuffer(no wait) = %v", err)
		}
		took += n
	}
	if took > 8<<10 || int(took)+src.Len() != 8<<10 {
		t.Errorf("WriteBuffer(no wait) took %d and left %d of 8192", took, src.Len())
	}

	ca.CloseWrite()
	if _, err := ca.WriteBuffer(&src, true); err == nil {
		t.Errorf("WriteBuffer after CloseWrite = nil, want an error")
	}
	cb.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	if _, err := io.Copy(io.Discard, cb); err != nil {
		t.Errorf("reading to EOF = %v", err)
	}
	if n, err := cb.ReadBuffer(&dst, 10); n != 0 || err != io.EOF {
		t.Errorf("ReadBuffer at EOF = %d, %v, want 0, io.EOF", n, err)
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
