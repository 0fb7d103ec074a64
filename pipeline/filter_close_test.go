package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"
)

// Tests of filter.go's ends: a filter that never had a transport closes
// (libevent's case 33), Drain pushes every byte down a stack before
// closing it, and a filter sees its underlying stop. Close without
// CloseOnFree, which keeps the underlying, is in filter_contract_test.go.

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

// stuckWriter is a net.Conn whose writes wait until fail is closed and
// then fail with EPIPE, while its reads stay open (nothing comes): a
// write side that breaks with no event on the read side.
type stuckWriter struct {
	net.Conn
	fail chan struct{}
}

func (w stuckWriter) Write(p []byte) (int, error) {
	<-w.fail
	return 0, &net.OpError{Op: "write", Net: "test", Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// Drain of a stack of filters whose bottom cannot deliver reports it: an
// error wrapping actor.ErrOutputLost and the EPIPE, from the underlying's
// Drain up through each filter's, and the stack closes; a Send waiting
// on the top returns. The bottom is a
// pair whose partner, which never reads, closes while the bytes wait
// (EOF on the read side too), or a connection whose writes fail while
// its reads stay open. A filter whose output stage waited for room in
// its underlying never learned that the underlying's writes had failed:
// the Drain waited for its context, and the Send for ever.
func TestFilterDrainReportsLostOutput(t *testing.T) {
	for _, tc := range []struct {
		bottom string
		stage  func() pipeline.Stage
		send   bool // a Send waits on the top (a compressor's output never backs up)
	}{
		{"pair partner closes", pipeline.PassThrough, true},
		{"writes fail, reads open", pipeline.PassThrough, true},
		{"pair partner closes", nil, true},
		{"writes fail, reads open", nil, true},
		{"pair partner closes", pipeline.Gzip, false},
	} {
		bottom := tc.bottom
		out := func() pipeline.Stage { return nil }
		name := bottom + "/no stage"
		if tc.stage != nil {
			out, name = tc.stage, fmt.Sprintf("%s/%T", bottom, tc.stage())
		}
		t.Run(name, func(t *testing.T) {
			base := testbev.NewBase(t)
			var u1 *actor.Bufferevent
			var breakIt func()
			if bottom == "pair partner closes" {
				var u2 *actor.Bufferevent
				u1, u2 = newLink(t, base, "pair", 0) // u2 never reads
				breakIt = func() { u2.Close() }
			} else {
				c1, c2 := net.Pipe()
				t.Cleanup(func() { c2.Close() })
				fail := make(chan struct{})
				var err error
				if u1, err = actor.New(base, stuckWriter{c1, fail}, actor.CloseOnFree); err != nil {
					t.Fatal(err)
				}
				u1.Enable(actor.Read)
				breakIt = func() { close(fail) }
			}
			mid, err := pipeline.NewFilter(u1, nil, out(), actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			top, err := pipeline.NewFilter(mid, nil, out(), actor.CloseOnFree)
			if err != nil {
				t.Fatal(err)
			}
			u1.SetWatermark(actor.Write, 0, 4096)
			mid.SetWatermark(actor.Write, 0, 4096)
			top.Write(testkit.Pattern(1 << 20))
			ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
			defer cancel()
			sent := make(chan error, 1)
			if tc.send {
				go func() { sent <- top.Send(context.Background(), make([]byte, 1<<20)) }()
				deadline := time.Now().Add(testkit.WaitTime)
				for top.OutputLen() <= 1<<20 { // the Send's first piece is counted: it waits
					if time.Now().After(deadline) {
						t.Fatal("the Send did not start")
					}
					runtime.Gosched()
				}
			}
			drained := make(chan error, 1)
			go func() { drained <- top.Drain(ctx) }()
			breakIt()
			if tc.send {
				if err := testkit.Recv(t, sent, "Send"); !errors.Is(err, syscall.EPIPE) {
					t.Errorf("Send on a stack whose bottom broke = %v, want EPIPE", err)
				}
			}
			if err := testkit.Recv(t, drained, "Drain"); !errors.Is(err, actor.ErrOutputLost) || !errors.Is(err, syscall.EPIPE) {
				t.Errorf("Drain of a stack whose bottom broke = %v, want ErrOutputLost and EPIPE", err)
			}
			for _, b := range []*actor.Bufferevent{top, mid, u1} {
				testkit.Recv(t, b.Done(), "the stack to close")
			}
		})
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
