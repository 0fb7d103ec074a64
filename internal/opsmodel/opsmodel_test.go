package opsmodel_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/opsmodel"
	"github.com/bevgo/bev/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Reporter that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic("Fatalf")
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errors
	r.errors = nil
	return e
}

// far is a Far whose answers the test sets.
type far struct {
	mayFail bool
}

func (f *far) String() string                                              { return "test far side" }
func (f *far) MayFailWrites() bool                                         { return f.mayFail }
func (f *far) WriteFailure(err error) bool                                 { return errors.Is(err, syscall.EPIPE) }
func (f *far) DrainFailure(err error) bool                                 { return false }
func (f *far) Wrote() int64                                                { return 0 }
func (f *far) FarEvent(actor.Event, error, string, *opsmodel.Counts, bool) {}

// newEnd returns an End over one end of a fresh pair in the given style,
// and a function that closes the pair.
func newEnd(t *testing.T, style opsmodel.Style, f opsmodel.Far, rep opsmodel.Reporter) (*opsmodel.End, func()) {
	t.Helper()
	a, b, err := actor.NewPair(nil, 0)
	if err != nil {
		t.Fatalf("NewPair() = %v", err)
	}
	var drains sync.WaitGroup
	e := &opsmodel.End{}
	e.Init(a, opsmodel.Config{Style: style, Budget: 1 << 10, Wait: time.Second, Prefix: "end: "}, rep, f, &drains, actor.PairMaxIO, actor.PairMaxIO)
	return e, func() {
		a.Close()
		b.Close()
		drains.Wait()
	}
}

// TestExpect: the error a state-changing call may return in each state
// of the model.
func TestExpect(t *testing.T) {
	errOther := errors.New("other")
	for _, c := range []struct {
		state     int32
		freedHere bool
		valid     bool
		err       error
		ok        bool
	}{
		{opsmodel.Alive, false, true, nil, true},
		{opsmodel.Alive, false, true, actor.ErrClosed, false},
		{opsmodel.Alive, false, false, actor.ErrInvalid, true},
		{opsmodel.Alive, false, false, actor.ErrClosed, false},
		{opsmodel.Alive, false, false, nil, false},
		{opsmodel.Uncertain, false, true, nil, true},
		{opsmodel.Uncertain, false, true, actor.ErrClosed, true},
		{opsmodel.Uncertain, false, true, errOther, false},
		{opsmodel.Uncertain, false, false, actor.ErrClosed, true},
		{opsmodel.Uncertain, true, true, nil, false},
		{opsmodel.Uncertain, true, true, actor.ErrClosed, true},
		{opsmodel.Closed, false, true, nil, false},
		{opsmodel.Closed, false, true, actor.ErrClosed, true},
	} {
		rep := &recorder{}
		e, done := newEnd(t, opsmodel.Poll, &far{}, rep)
		e.State.Store(c.state)
		e.FreedHere = c.freedHere
		e.Expect("Call", c.err, c.valid)
		if got := rep.take(); (len(got) == 0) != c.ok {
			t.Errorf("state %d, freed here %v, valid %v: Expect(%v) reported %q, want ok %v", c.state, c.freedHere, c.valid, c.err, got, c.ok)
		}
		done()
	}
}

// TestExpectWrite: a write may also fail as the far side allows, and a
// Send with its context's error.
func TestExpectWrite(t *testing.T) {
	for _, c := range []struct {
		mayFail bool
		err     error
		ctxErr  bool
		ok      bool
	}{
		{false, nil, false, true},
		{false, syscall.EPIPE, false, false},
		{true, syscall.EPIPE, false, true},
		{true, syscall.ECONNRESET, false, false},
		{false, errors.Join(errors.New("send"), errors.ErrUnsupported), true, false},
		{false, fmt.Errorf("send: %w", errCanceled()), true, true},
		{false, fmt.Errorf("send: %w", errCanceled()), false, false},
	} {
		rep := &recorder{}
		e, done := newEnd(t, opsmodel.Poll, &far{mayFail: c.mayFail}, rep)
		e.ExpectWrite("Write", c.err, c.ctxErr)
		if got := rep.take(); (len(got) == 0) != c.ok {
			t.Errorf("may fail %v: ExpectWrite(%v, ctxErr %v) reported %q, want ok %v", c.mayFail, c.err, c.ctxErr, got, c.ok)
		}
		done()
	}
}

// errCanceled returns a cancelled context's error.
func errCanceled() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx.Err()
}

// TestBound: the input's bound follows the read high watermarks in
// force while reading is enabled: none set means none for a poll user,
// the channel default for an In user; a lower mark never lowers it.
func TestBound(t *testing.T) {
	for _, c := range []struct {
		style opsmodel.Style
		marks []int // read high watermarks set while reading is enabled
		want  int64
	}{
		{opsmodel.Poll, nil, -1},
		{opsmodel.Channel, nil, actor.DefaultChannelHighWatermark},
		{opsmodel.Poll, []int{100}, -1}, // reading enabled with no mark: unbounded from then on
	} {
		rep := &recorder{}
		e, done := newEnd(t, c.style, &far{}, rep)
		e.EnableRead()
		for _, m := range c.marks {
			e.SetWatermark(actor.Read, 0, m)
		}
		if got := e.Bound.Load(); got != c.want {
			t.Errorf("%v, marks %v: Bound = %d, want %d", c.style, c.marks, got, c.want)
		}
		if errs := rep.take(); len(errs) != 0 {
			t.Errorf("%v, marks %v: reported %q", c.style, c.marks, errs)
		}
		done()
	}

	rep := &recorder{}
	e, done := newEnd(t, opsmodel.Poll, &far{}, rep)
	defer done()
	e.SetWatermark(actor.Read, 10, 100) // reading disabled: not in force yet
	if got, floor := e.Bound.Load(), e.LowFloor.Load(); got != 0 || floor != math.MaxInt64 {
		t.Errorf("mark set while reading is disabled: Bound, LowFloor = %d, %d, want 0, MaxInt64", got, floor)
	}
	e.EnableRead()
	e.SetWatermark(actor.Read, 20, 50)
	e.SetWatermark(actor.Read, 5, 200)
	if got, floor := e.Bound.Load(), e.LowFloor.Load(); got != 200 || floor != 5 {
		t.Errorf("marks 100, 50, 200 in force: Bound, LowFloor = %d, %d, want 200, 5", got, floor)
	}
	e.CheckBound(200, "test")
	if errs := rep.take(); len(errs) != 0 {
		t.Errorf("200 bytes within a bound of 200: reported %q", errs)
	}
	e.CheckBound(201, "test")
	if errs := rep.take(); len(errs) != 1 || !strings.HasPrefix(errs[0], "end: test: input holds 201 bytes") {
		t.Errorf("201 bytes above a bound of 200: reported %q, want one failure", errs)
	}
}

// TestRecord: received bytes must be the far side's stream, in order,
// and none may come after the end of the read side.
func TestRecord(t *testing.T) {
	rep := &recorder{}
	e, done := newEnd(t, opsmodel.Poll, &far{}, rep)
	defer done()
	e.Record(testkit.UniqueAt(0, 0, 10), "first")
	e.Record(testkit.UniqueAt(0, 10, 5), "second")
	if errs := rep.take(); len(errs) != 0 || e.Received() != 15 {
		t.Errorf("the stream in two pieces: reported %q, received %d; want nothing, 15", errs, e.Received())
	}
	e.Record(testkit.UniqueAt(0, 16, 4), "skipped a byte")
	if errs := rep.take(); len(errs) != 1 || !strings.Contains(errs[0], "byte 15 of the far side's stream") {
		t.Errorf("a piece one byte ahead: reported %q, want a failure at byte 15", errs)
	}
	var in actor.Buffer
	in.Write(testkit.UniqueAt(0, 19, 3))
	e.TakeRest(&in, "rest")
	e.Record(testkit.UniqueAt(0, 22, 1), "late")
	if errs := rep.take(); len(errs) != 1 || !strings.Contains(errs[0], "after the end of the read side") {
		t.Errorf("a byte after TakeRest: reported %q, want one failure", errs)
	}
}

// TestReadError: which events are read errors, deferred or not.
func TestReadError(t *testing.T) {
	for _, c := range []struct {
		ev       actor.Event
		deferred bool
		want     bool
	}{
		{actor.Reading | actor.Error, false, true},
		{actor.Reading | actor.Error, true, true},
		{actor.Writing | actor.Error, false, false},
		{actor.Reading | actor.EOF, false, false},
		{actor.Reading | actor.Error | actor.EOF, false, true},
		{actor.Reading | actor.Error | actor.EOF, true, false},
		{actor.Reading | actor.Writing | actor.Error, true, false},
		{actor.Reading | actor.Timeout | actor.Error, true, true},
	} {
		if got := opsmodel.ReadError(c.ev, c.deferred); got != c.want {
			t.Errorf("ReadError(%v, deferred %v) = %v, want %v", c.ev, c.deferred, got, c.want)
		}
	}
}

// TestDecoders: the argument decoders' ranges and validity.
func TestDecoders(t *testing.T) {
	if got := []opsmodel.Style{opsmodel.DecodeStyle(0), opsmodel.DecodeStyle(1), opsmodel.DecodeStyle(2), opsmodel.DecodeStyle(3), opsmodel.DecodeStyle(0xfe)}; fmt.Sprint(got) != "[poll callback channel poll channel]" {
		t.Errorf("DecodeStyle(0, 1, 2, 3, 0xfe) = %v", got)
	}
	if got := opsmodel.Style(7).String(); got != "Style(7)" {
		t.Errorf("Style(7).String() = %q, want \"Style(7)\"", got)
	}
	if lo, hi := opsmodel.Low(0x80), opsmodel.Low(0x7f); lo != -512 || hi != 508 {
		t.Errorf("Low ranges %d to %d, want -512 to 508", lo, hi)
	}
	if lo, hi := opsmodel.High(0x80), opsmodel.High(0x7f); lo != -2048 || hi != 2032 {
		t.Errorf("High ranges %d to %d, want -2048 to 2032", lo, hi)
	}
	if lo, hi := opsmodel.MaxIO(0x80), opsmodel.MaxIO(0x7f); lo != -8192 || hi != 8128 {
		t.Errorf("MaxIO ranges %d to %d, want -8192 to 8128", lo, hi)
	}
	if m := opsmodel.Mode(0xff); m != -1 {
		t.Errorf("Mode(0xff) = %d, want -1", m)
	}
	for a := range 8 {
		d := opsmodel.Dir(byte(a) | 0xf8)
		if want := a >= 1 && a <= 3; opsmodel.ValidDir(d) != want {
			t.Errorf("ValidDir(Dir(%#x)) = %v, want %v", a|0xf8, !want, want)
		}
	}
	if !opsmodel.ValidTrig(actor.TriggerIgnoreWatermarks|actor.TriggerDefer) || opsmodel.ValidTrig(1<<20) {
		t.Errorf("ValidTrig: the known options must be valid and 1<<20 invalid")
	}
}

// TestDelivery: what Delivery.Check finds wrong with one direction of a
// stream.
func TestDelivery(t *testing.T) {
	for _, c := range []struct {
		name string
		d    opsmodel.Delivery
		want []string // what each failure starts with
	}{
		{"all delivered", opsmodel.Delivery{Written: 10, Accepted: 10, Received: 10, EOF: true, AliveAtFinish: true}, nil},
		{"cut short, no EOF", opsmodel.Delivery{Written: 10, Accepted: 20, Received: 5}, nil},
		{"lost after a failure", opsmodel.Delivery{Written: 10, Accepted: 20, Received: 10, EOF: true, AliveAtFinish: true, Failed: true}, nil},
		{"more written than accepted", opsmodel.Delivery{Written: 11, Accepted: 10, Received: 11, EOF: true}, []string{"Written() = 11"}},
		{"more received than written", opsmodel.Delivery{Written: 5, Accepted: 10, Received: 6}, []string{"the reader received 6"}},
		{"EOF before all written", opsmodel.Delivery{Written: 8, Accepted: 8, Received: 6, EOF: true}, []string{"the reader read a clean EOF after 6"}},
		{"alive but lost", opsmodel.Delivery{Written: 8, Accepted: 10, Received: 8, EOF: true, AliveAtFinish: true}, []string{"the writer stayed open"}},
	} {
		got := c.d.Check()
		ok := len(got) == len(c.want)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.HasPrefix(got[i], c.want[i])
		}
		if !ok {
			t.Errorf("%s: Check() = %q, want failures starting %q", c.name, got, c.want)
		}
	}
}

// TestJoinDrains: true once the count reaches zero, false while it does
// not within the limit.
func TestJoinDrains(t *testing.T) {
	var wg sync.WaitGroup
	if !opsmodel.JoinDrains(&wg, time.Second) {
		t.Errorf("JoinDrains(nothing to wait for) = false")
	}
	wg.Add(1)
	release := make(chan struct{})
	go func() {
		defer wg.Done()
		<-release
	}()
	if opsmodel.JoinDrains(&wg, time.Millisecond) {
		t.Errorf("JoinDrains(a goroutine still held) = true")
	}
	close(release)
	if !opsmodel.JoinDrains(&wg, testkit.WaitTime) {
		t.Errorf("JoinDrains(after the goroutine was released) = false")
	}
}
