package conn_test

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
)

// TestBasics is libevent's bufferevent and bufferevent_flush_* (cases 1,
// 3–5): 8333 bytes from one end to the other, the reader taking them when
// all have arrived, the writer told when its output has drained. libevent's
// socket ignores the flush; here Finished half-closes, so the reader also
// gets Reading|EOF, after every byte.
func TestBasics(t *testing.T) {
	const n = 8333
	modes := []struct {
		name  string
		flush bool
		mode  actor.FlushMode
	}{
		{"noflush", false, 0},
		{"normal", true, actor.Normal},
		{"flush", true, actor.Flush},
		{"finished", true, actor.Finished},
	}
	for _, tr := range transports {
		for _, m := range modes {
			t.Run(tr.name+"/"+m.name, func(t *testing.T) {
				base := testbev.NewBase(t)
				a, b := tr.make(t, base, 0)
				if tr.name == "tcp" && (a.Conn() == nil || b.Conn() == nil) {
					t.Errorf("Conn() = nil on a socket, want the net.Conn")
				}
				if a.Underlying() != nil || a.Partner() != nil && tr.name == "tcp" {
					t.Errorf("a socket has an underlying bufferevent or a partner")
				}
				got := make(chan []byte, 1)
				wrote := make(chan struct{}, 1)
				eof := make(chan int, 1)
				var events atomic.Int32
				a.SetCallbacks(actor.Callbacks{
					Write: func(s *actor.Session) {
						if s.Output().Len() == 0 {
							testkit.Signal(wrote)
						}
					},
					Event: func(s *actor.Session, ev actor.Event, err error) {
						t.Errorf("writer event %v (%v), want none", ev, err)
					},
				})
				b.SetCallbacks(actor.Callbacks{
					Read: func(s *actor.Session) {
						if s.Input().Len() == n {
							var buf actor.Buffer
							if err := s.ReadBuffer(&buf); err != nil {
								t.Errorf("ReadBuffer = %v", err)
							}
							got <- testkit.DrainAll(t, &buf)
							if !m.flush || m.mode != actor.Finished {
								s.Disable(actor.Read)
							}
						}
					},
					Event: func(s *actor.Session, ev actor.Event, err error) {
						events.Add(1)
						if ev != actor.Reading|actor.EOF {
							t.Errorf("reader event %v (%v), want Reading|EOF", ev, err)
						}
						eof <- s.Input().Len()
					},
				})
				if err := a.Disable(actor.Read); err != nil {
					t.Fatal(err)
				}
				if err := b.Enable(actor.Read); err != nil {
					t.Fatal(err)
				}
				if a.Enabled() != actor.Write || b.Enabled() != actor.Read|actor.Write {
					t.Errorf("Enabled() = %v, %v, want Write, Read|Write", a.Enabled(), b.Enabled())
				}
				if err := a.Write(testkit.Pattern(n)); err != nil {
					t.Fatal(err)
				}
				if m.flush {
					if err := a.Flush(actor.Write, m.mode); err != nil {
						t.Fatalf("Flush(Write, %v) = %v, want nil", m.mode, err)
					}
				}
				if p := testkit.Recv(t, got, "8333 bytes"); !bytes.Equal(p, testkit.Pattern(n)) {
					t.Errorf("read %d bytes that differ from the %d written", len(p), n)
				}
				testkit.Recv(t, wrote, "the write callback")
				want := int32(0)
				if m.flush && m.mode == actor.Finished {
					want = 1
					if left := testkit.Recv(t, eof, "EOF"); left != 0 {
						t.Errorf("input at EOF holds %d bytes, want 0 (all delivered before)", left)
					}
				}
				// A round trip through each actor: whatever they were
				// about to report has been reported.
				a.Do(func(*actor.Session) {})
				b.Do(func(*actor.Session) {})
				if got := events.Load(); got != want {
					t.Errorf("reader got %d events, want %d", got, want)
				}
			})
		}
	}
}

// TestWatermarks is libevent's bufferevent_watermarks (case 10): 65000
// bytes through read marks 10/20 and write marks 100/2000. Every read
// callback sees 10 to 20 bytes; every write callback an output of at most
// 100.
func TestWatermarks(t *testing.T) {
	const n = 65000
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			a, b := tr.make(t, base, 0)
			if low, _, _ := a.Watermark(actor.Read); low != 0 {
				t.Errorf("default read low watermark = %d, want 0", low)
			}
			if low, _, _ := b.Watermark(actor.Write); low != 0 {
				t.Errorf("default write low watermark = %d, want 0", low)
			}
			if err := b.SetWatermark(actor.Read, 10, 20); err != nil {
				t.Fatal(err)
			}
			if low, high, err := b.Watermark(actor.Read); low != 10 || high != 20 || err != nil {
				t.Errorf("Watermark(Read) = %d, %d, %v, want 10, 20, nil", low, high, err)
			}
			if tr.name == "pair" {
				// The pair's pipe hands the reader each write batch of
				// at most MaxWrite bytes; the default is not a multiple
				// of 20, so a tail under the read low watermark could be
				// left with no callback, which libevent's pair (moving
				// whole buffers) never meets. Align the batches to the
				// marks.
				a.SetMaxWrite(16380)
			}
			if err := a.SetWatermark(actor.Write, 100, 2000); err != nil {
				t.Fatal(err)
			}
			if low, high, err := a.Watermark(actor.Write); low != 100 || high != 2000 || err != nil {
				t.Errorf("Watermark(Write) = %d, %d, %v, want 100, 2000, nil", low, high, err)
			}
			if _, _, err := a.Watermark(actor.Read | actor.Write); err == nil {
				t.Errorf("Watermark(Read|Write) = nil error, want one")
			}
			var received bytes.Buffer
			readDone := make(chan struct{}, 1)
			writeDone := make(chan struct{}, 1)
			a.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
				if l := s.Output().Len(); l > 100 {
					t.Errorf("write callback with %d bytes of output, want <= 100", l)
				} else if l == 0 {
					testkit.Signal(writeDone)
				}
			}})
			b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				if l := s.Input().Len(); l < 10 || l > 20 {
					t.Errorf("read callback with %d bytes of input, want 10..20", l)
				}
				received.Write(testkit.DrainAll(t, s.Input()))
				if received.Len() == n {
					s.Disable(actor.Read)
					testkit.Signal(readDone)
				}
			}})
			b.Enable(actor.Read)
			if err := a.Write(testkit.Pattern(n)); err != nil {
				t.Fatal(err)
			}
			testkit.Recv(t, writeDone, "the output to drain")
			testkit.Recv(t, readDone, "65000 bytes")
			if err := b.Do(func(*actor.Session) {}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(received.Bytes(), testkit.Pattern(n)) {
				t.Errorf("received bytes differ from those written")
			}
		})
	}
}

// TestPartialRead is libevent's bufferevent_read_failed (case 36): 9
// bytes in, a Read of 8 takes 8 and leaves 1.
func TestPartialRead(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			base := testbev.NewBase(t)
			a, b := tr.make(t, base, 0)
			type result struct{ n, left int }
			res := make(chan result, 1)
			b.SetWatermark(actor.Read, 9, 0)
			b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
				p := make([]byte, 8)
				n := s.Read(p)
				if string(p[:n]) != "test dat" {
					t.Errorf("Read = %q, want %q", p[:n], "test dat")
				}
				res <- result{n, s.Input().Len()}
				s.Disable(actor.Read)
			}})
			b.Enable(actor.Read)
			if err := a.Write([]byte("test data")); err != nil {
				t.Fatal(err)
			}
			if r := testkit.Recv(t, res, "the read callback"); r.n != 8 || r.left != 1 {
				t.Errorf("Read(8 of 9) = %d leaving %d, want 8 leaving 1", r.n, r.left)
			}
		})
	}
}

// TestHalfClose: Flush(Write, Finished) writes every byte, then shuts the
// TCP connection's write side only. The peer reads all of it, then
// Reading|EOF, and can still answer.
func TestHalfClose(t *testing.T) {
	base := testbev.NewBase(t)
	a, b := transports[0].make(t, base, 0)
	const n = 1 << 20
	var received bytes.Buffer
	eof := make(chan int, 1)
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { received.Write(testkit.DrainAll(t, s.Input())) },
		Event: func(s *actor.Session, ev actor.Event, err error) {
			if ev != actor.Reading|actor.EOF || err != io.EOF {
				t.Errorf("event %v (%v), want Reading|EOF (EOF)", ev, err)
			}
			eof <- received.Len()
			if err := s.Write([]byte("reply")); err != nil {
				t.Errorf("Write after EOF = %v", err)
			}
		},
	})
	reply := make(chan string, 1)
	a.SetWatermark(actor.Read, 5, 0)
	a.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) { reply <- string(testkit.DrainAll(t, s.Input())) }})
	a.Enable(actor.Read)
	b.Enable(actor.Read)
	if err := a.Write(testkit.Pattern(n)); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatal(err)
	}
	if got := testkit.Recv(t, eof, "EOF"); got != n {
		t.Errorf("EOF after %d bytes, want after all %d", got, n)
	}
	if got := testkit.Recv(t, reply, "the reply"); got != "reply" {
		t.Errorf("reply = %q, want %q", got, "reply")
	}
	if !bytes.Equal(received.Bytes(), testkit.Pattern(n)) {
		t.Errorf("received bytes differ from those written")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitTime)
	defer cancel()
	if err := b.Drain(ctx); err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
}
