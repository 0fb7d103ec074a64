package actor_test

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/limiter"
)

// pulledTransport holds its input in memory and lets the bufferevent take
// it without a reader loop (TryReadBuffer, NotifyReadable), as a filter's
// view of its underlying bufferevent does; ReadBuffer, which waits, is
// there for the reader loop a rate limit brings in.
type pulledTransport struct {
	mu    sync.Mutex // guards following
	in    actor.Buffer
	eof   bool
	wake  func()
	waits int // ReadBuffer calls: the reader loop's

	more   chan struct{} // buffered(1): input or the end arrived
	closed chan struct{}
	once   sync.Once
}

func newPulledTransport() *pulledTransport {
	return &pulledTransport{more: make(chan struct{}, 1), closed: make(chan struct{})}
}

// feed appends p (or, for nil, the end of the stream) and wakes the
// bufferevent.
func (p *pulledTransport) feed(b []byte) {
	p.mu.Lock()
	if b == nil {
		p.eof = true
	} else {
		p.in.Write(b)
	}
	wake := p.wake
	p.mu.Unlock()
	testkit.Signal(p.more)
	if wake != nil {
		wake()
	}
}

func (p *pulledTransport) held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.in.Len()
}

func (p *pulledTransport) TryReadBuffer(dst *actor.Buffer, max int) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.in.Len() == 0 {
		if p.eof {
			return 0, io.EOF
		}
		return 0, nil
	}
	return dst.MoveFromN(&p.in, max)
}

func (p *pulledTransport) NotifyReadable(wake func()) {
	p.mu.Lock()
	p.wake = wake
	p.mu.Unlock()
}

func (p *pulledTransport) ReadBuffer(dst *actor.Buffer, max int) (int, error) {
	p.mu.Lock()
	p.waits++
	p.mu.Unlock()
	for {
		if n, err := p.TryReadBuffer(dst, max); n > 0 || err != nil {
			return n, err
		}
		select {
		case <-p.more:
		case <-p.closed:
			return 0, io.ErrClosedPipe
		}
	}
}

func (p *pulledTransport) Read(b []byte) (int, error) {
	var dst actor.Buffer
	n, err := p.ReadBuffer(&dst, len(b))
	dst.Read(b)
	return n, err
}

func (p *pulledTransport) Write(b []byte) (int, error) { return len(b), nil }

func (p *pulledTransport) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// A transport that the bufferevent reads itself (TryReadBuffer) delivers
// its bytes in order, only while reading is enabled and within the read
// high watermark, and its EOF after every byte, with no reader loop: the
// waiting ReadBuffer is never called. With a rate limit the reader loop
// takes over, through ReadBuffer.
func TestPulledTransport(t *testing.T) {
	for _, limited := range []bool{false, true} {
		name := "unlimited"
		if limited {
			name = "rate-limited"
		}
		t.Run(name, func(t *testing.T) {
			tr := newPulledTransport()
			b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			defer func() {
				b.Close()
				tr.mu.Lock()
				defer tr.mu.Unlock()
				if tr.wake != nil {
					t.Errorf("the bufferevent stopped without taking its wake function back")
				}
			}()
			if limited {
				err := b.SetRateLimit(&limiter.Config{ReadRate: 1 << 30, ReadBurst: 1 << 30, WriteRate: 1 << 30, WriteBurst: 1 << 30})
				if err != nil {
					t.Fatalf("SetRateLimit = %v", err)
				}
			}
			var (
				mu  sync.Mutex
				got []byte
			)
			sig := make(chan struct{}, 1)
			eof := make(chan int, 1)
			b.SetWatermark(actor.Read, 0, 1000)
			b.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) {
					if s.Input().Len() > 1000+600 {
						t.Errorf("input holds %d bytes, above the read high watermark plus one read", s.Input().Len())
					}
					mu.Lock()
					got = append(got, testkit.DrainAll(t, s.Input())...)
					mu.Unlock()
					testkit.Signal(sig)
				},
				Event: func(s *actor.Session, ev actor.Event, err error) {
					if ev == actor.Reading|actor.EOF {
						mu.Lock()
						eof <- len(got)
						mu.Unlock()
					}
				},
			})
			want := testkit.Pattern(10000)
			tr.feed(want[:600])
			// Reading is disabled: nothing is taken. (The second Do runs
			// after the turn the wake-up started.)
			for range 2 {
				if err := b.Do(func(*actor.Session) {}); err != nil {
					t.Fatalf("Do = %v", err)
				}
			}
			if !limited && tr.held() != 600 {
				t.Errorf("transport holds %d bytes with reading disabled, want 600", tr.held())
			}
			b.Enable(actor.Read)
			for off := 600; off < len(want); off += 600 {
				tr.feed(want[off:min(off+600, len(want))])
			}
			tr.feed(nil)
			if n := testkit.Recv(t, eof, "EOF"); n != len(want) {
				t.Fatalf("EOF after %d bytes, want %d", n, len(want))
			}
			mu.Lock()
			defer mu.Unlock()
			if !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes that differ from the %d fed", len(got), len(want))
			}
			tr.mu.Lock()
			waits := tr.waits
			tr.mu.Unlock()
			if limited && waits == 0 {
				t.Errorf("rate-limited: the reader loop never called ReadBuffer")
			}
			if !limited && waits != 0 {
				t.Errorf("ReadBuffer called %d times, want none: the bufferevent reads the transport itself", waits)
			}
		})
	}
}

// An end of stream that waits behind the last bytes a short read took is
// found in the same turn: the transport announced it (with its wake
// function) before that read, so nothing announces it again.
func TestPulledTransportEndBehindBytes(t *testing.T) {
	tr := newPulledTransport()
	b, err := actor.New(testbev.NewBase(t), tr, actor.CloseOnFree)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	defer b.Close()
	type end struct {
		n  int
		ev actor.Event
	}
	got := 0
	ends := make(chan end, 1)
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { got += len(testkit.DrainAll(t, s.Input())) },
		Event: func(_ *actor.Session, ev actor.Event, _ error) {
			ends <- end{got, ev}
		},
	})
	tr.feed(testkit.Pattern(600)) // reading is disabled: both wake-ups find nothing to do
	tr.feed(nil)
	if err := b.Do(func(*actor.Session) {}); err != nil {
		t.Fatalf("Do = %v", err)
	}
	b.Enable(actor.Read)
	if e := testkit.Recv(t, ends, "EOF"); e.ev != actor.Reading|actor.EOF || e.n != 600 {
		t.Errorf("event %v after %d bytes, want Reading|EOF after 600", e.ev, e.n)
	}
}
