package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

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
