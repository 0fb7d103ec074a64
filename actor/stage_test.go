package actor_test

import (
	"bytes"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
)

// moveStage moves up to limit bytes unchanged and counts its calls.
type moveStage struct{ calls int }

func (m *moveStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	m.calls++
	n := src.Len()
	if limit >= 0 && limit < n {
		n = limit
	}
	if n == 0 {
		return actor.StageNeedMore, nil
	}
	p := make([]byte, n)
	src.Read(p)
	dst.Write(p)
	return actor.StageOK, nil
}

// limitConn is a net.Conn that reports a fixed WriteLimit, as a filter's
// view of its underlying bufferevent does.
type limitConn struct {
	net.Conn
	limit int
}

func (c limitConn) WriteLimit() int { return c.limit }

func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p := make([]byte, n)
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatalf("ReadFull(%d) = %v, want nil", n, err)
	}
	return p
}

// A transport whose WriteLimit is -1 sets no limit: the output stage must
// run with limit -1, not never.
func TestStageOutputNoWriteLimit(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	st := &moveStage{}
	b, err := actor.NewStaged(nil, limitConn{c1, -1}, actor.CloseOnFree, nil, st)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	if err := b.Write([]byte("hello")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if got := readN(t, c2, 5); string(got) != "hello" {
		t.Fatalf("peer read %q, want %q", got, "hello")
	}
}

// expandStage turns each input byte into ten output bytes, consuming only
// what fits under the limit, as a decompressor does.
type expandStage struct{}

func (expandStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	n := src.Len()
	if limit >= 0 && limit/10 < n {
		n = limit / 10
	}
	if n == 0 {
		return actor.StageNeedMore, nil
	}
	p := make([]byte, n)
	src.Read(p)
	dst.Write(bytes.Repeat(p, 10))
	return actor.StageOK, nil
}

// Raw input left over when the stage filled the input to its high
// watermark is processed as soon as a read callback running inline drains
// the input, even when nothing more arrives (libevent #362,
// filter_data_stuck).
func TestStageInputNotStuckAfterInlineDrain(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, expandStage{}, nil)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	total := make(chan int, 64)
	b.SetWatermark(actor.Read, 0, 100)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		n := s.Input().Len()
		s.Input().Drain(n)
		total <- n
	}})
	b.Enable(actor.Read)
	c2.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Write(make([]byte, 50)); err != nil {
		t.Fatalf("peer Write = %v", err)
	}
	got := 0
	deadline := time.After(5 * time.Second)
	for got < 500 {
		select {
		case n := <-total:
			got += n
		case <-deadline:
			t.Fatalf("read %d bytes, want 500", got)
		}
	}
}

// With an input stage the reader's bytes land in the raw input, so the
// read limit does not move when they are delivered; the reader must still
// be woken to read on (it stalled after the first read).
func TestStageReaderKeepsReading(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, &moveStage{}, nil)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	b.SetWatermark(actor.Read, 0, 100)
	got := make(chan int, 1000)
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		n := s.Input().Len()
		s.Input().Drain(n)
		got <- n
	}})
	b.Enable(actor.Read)
	go func() {
		c2.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c2.Write(make([]byte, 1000))
	}()
	total := 0
	deadline := time.After(5 * time.Second)
	for total < 1000 {
		select {
		case n := <-got:
			total += n
		case <-deadline:
			t.Fatalf("read %d bytes, want 1000", total)
		}
	}
}

// failAtEOF fails when called with Finished.
type failAtEOF struct{}

var errFinished = io.ErrUnexpectedEOF

func (failAtEOF) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	if mode == actor.Finished {
		return actor.StageError, errFinished
	}
	dst.MoveFrom(src)
	return actor.StageOK, nil
}

// An input stage that fails when EOF flushes it with Finished closes the
// bufferevent with that error, and no EOF event follows the Error.
func TestStageFinishedFailureNoEOFAfterError(t *testing.T) {
	c1, c2 := net.Pipe()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, failAtEOF{}, nil)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	events := b.Events()
	b.Enable(actor.Read)
	c2.Close()
	var got []actor.Event
	for e := range events {
		got = append(got, e.Event)
	}
	<-b.Done()
	if len(got) != 1 || got[0]&actor.Error == 0 {
		t.Fatalf("events = %v, want exactly one Error", got)
	}
	if err := b.Err(); err != errFinished {
		t.Fatalf("Err() = %v, want %v", err, errFinished)
	}
}

// pendingStage expands each input byte tenfold into output it holds, and
// releases that only up to the limit, reporting what it holds through
// Buffered, as a decompressor does.
type pendingStage struct{ held actor.Buffer }

func (p *pendingStage) Buffered() int { return p.held.Len() }

func (p *pendingStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	in := make([]byte, src.Len())
	src.Read(in)
	p.held.Write(bytes.Repeat(in, 10))
	n := p.held.Len()
	if limit >= 0 && limit < n {
		n = limit
	}
	if n == 0 {
		return actor.StageNeedMore, nil
	}
	q := make([]byte, n)
	p.held.Read(q)
	dst.Write(q)
	return actor.StageOK, nil
}

// A stage that holds output (Buffered > 0) is called again as room
// appears, although no raw input waits.
func TestStageBufferedIsCalledAgain(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, &pendingStage{}, nil)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	b.SetWatermark(actor.Read, 0, 100)
	var got bytes.Buffer
	done := make(chan struct{})
	b.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		s.Input().WriteTo(&got)
		if got.Len() == 1000 {
			close(done)
		}
	}})
	b.Enable(actor.Read)
	go func() {
		c2.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c2.Write(bytes.Repeat([]byte("z"), 100))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("read %d bytes, want 1000", got.Len())
	}
}

// sinkStage consumes everything and emits nothing, as a compressor that
// buffers does.
type sinkStage struct{}

func (sinkStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	if src.Len() == 0 {
		return actor.StageNeedMore, nil
	}
	src.Drain(src.Len())
	return actor.StageOK, nil
}

// When the output stage drains the output to the write low watermark the
// write callback runs, as libevent's be_filter_process_output does, even
// though nothing was written to the transport; output the callback adds is
// processed at once.
func TestStageOutputDrainRunsWriteCallback(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c2.Close()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, nil, sinkStage{})
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	calls := make(chan int, 16)
	n := 0
	b.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		n++
		if n < 3 {
			s.Write([]byte("more"))
		}
		calls <- n
	}})
	b.Write([]byte("first"))
	for want := 1; want <= 3; want++ {
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("write callback %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("write callback %d did not run", want)
		}
	}
}

// holdStage emits nothing until Finished, then everything it was given.
type holdStage struct{ held actor.Buffer }

func (h *holdStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	h.held.MoveFrom(src)
	if mode != actor.Finished {
		return actor.StageNeedMore, nil
	}
	dst.MoveFrom(&h.held)
	return actor.StageOK, nil
}

// What the Finished flush at EOF produces reaches the read callback before
// the EOF event.
func TestStageEOFFlushReachesReadCallback(t *testing.T) {
	c1, c2 := net.Pipe()
	b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, &holdStage{}, nil)
	if err != nil {
		t.Fatalf("NewStaged = %v", err)
	}
	defer b.Close()
	var got bytes.Buffer
	eof := make(chan string, 1)
	b.SetCallbacks(actor.Callbacks{
		Read:  func(s *actor.Session) { s.Input().WriteTo(&got) },
		Event: func(s *actor.Session, ev actor.Event, err error) { eof <- got.String() },
	})
	b.Enable(actor.Read)
	c2.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c2.Write([]byte("abc"))
	c2.Close()
	select {
	case s := <-eof:
		if s != "abc" {
			t.Fatalf("read %q before EOF, want %q", s, "abc")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF event")
	}
}

// A staged bufferevent's write callback that refills the output every
// time the stage drains it is cut off after 16 rounds in one turn, so the
// actor gets back to its mail. Over a transport that takes every write at
// once no write completion comes to resume it: the actor must give itself
// the next turn, or the last refill would wait for the stage forever.
func TestStagedWriteCallbackRefillsPastBound(t *testing.T) {
	tr := newBufTransport(true)
	b, err := actor.NewStaged(testbev.NewBase(t), tr, actor.CloseOnFree, nil, &moveStage{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const rounds, size = 100, 1000
	var want []byte
	for i := range rounds {
		want = append(want, bytes.Repeat([]byte{byte(i)}, size)...)
	}
	sent := 0 // touched only by the write callback
	b.SetCallbacks(actor.Callbacks{Write: func(s *actor.Session) {
		if sent < rounds {
			s.Output().Write(want[sent*size : (sent+1)*size])
			sent++
		}
	}})
	if err := b.Trigger(actor.Write, 0); err != nil {
		t.Fatal(err)
	}
	got, _ := tr.waitGot(t, len(want))
	if !bytes.Equal(got, want) {
		t.Fatalf("the transport got %d bytes that differ from the %d the callback wrote", len(got), len(want))
	}
}

// stageFunc is a function as a Stage.
type stageFunc func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error)

func (f stageFunc) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	return f(dst, src, limit, mode)
}

// leaveStage takes nothing from its source and says it holds bytes back
// (Buffered), as a delay that waits for its time: it records the most it
// was offered.
type leaveStage struct{ offered int }

func (l *leaveStage) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (actor.StageResult, error) {
	l.offered = max(l.offered, src.Len())
	return actor.StageNeedMore, nil
}

func (l *leaveStage) Buffered() int { return 1 }

// Reading pauses while 2 × PairMaxIO wait for an input stage that holds
// back and no read high watermark bounds them (docs/design.md, "Data
// guarantees"): a peer that sends 16 MiB to a bufferevent whose stage
// holds back gets at most that and one read through before its write
// blocks, and the stage is never offered more. A stage that takes
// nothing and holds nothing is starved instead (it needs more to go on)
// and is not bounded so. In a synctest bubble, so that "blocks" is the
// bubble going idle.
func TestStageHoldingBackPausesReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c1, c2 := net.Pipe()
		st := &leaveStage{}
		b, err := actor.NewStaged(nil, c1, actor.CloseOnFree, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Enable(actor.Read)
		sent := make(chan int, 1)
		go func() {
			n, _ := c2.Write(make([]byte, 16<<20))
			sent <- n
		}()
		synctest.Wait()
		bound := 2*actor.PairMaxIO + actor.DefaultMaxRead
		if offered := st.offered; offered > bound || offered < 2*actor.PairMaxIO {
			t.Errorf("the stage was offered %d bytes, want the reading to pause between %d and %d", offered, 2*actor.PairMaxIO, bound)
		}
		b.Close()
		if n := <-sent; n > bound {
			t.Errorf("the peer wrote %d bytes before its write failed, want at most %d", n, bound)
		}
	})
}
