package actor_test

import (
	"errors"
	"io"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
)

// Tests of timers.go: the read and write timeouts.

// Case 22, bufferevent_timeout_pair, in virtual time: the sender times out
// reading at 150 ms and writing (nobody reads its 7 bytes) at 100 ms, once
// each; the receiver, with nothing to write and reading disabled, never.
func TestPairTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		a, b, err := actor.NewPair(base, 0)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		type hit struct {
			ev actor.Event
			at time.Duration
		}
		var aEvents, bEvents []hit
		record := func(into *[]hit) func(*actor.Session, actor.Event, error) {
			return func(_ *actor.Session, ev actor.Event, err error) {
				if !errors.Is(err, actor.ErrTimeout) {
					t.Errorf("timeout event err = %v", err)
				}
				*into = append(*into, hit{ev, time.Since(start)})
			}
		}
		noData := func(*actor.Session) { t.Errorf("data callback during the timeout test") }
		b.SetCallbacks(actor.Callbacks{Read: noData, Write: noData, Event: record(&bEvents)})
		b.Disable(actor.Read)
		b.SetTimeouts(100*time.Millisecond, 200*time.Millisecond)
		a.SetCallbacks(actor.Callbacks{Read: noData, Write: noData, Event: record(&aEvents)})
		a.SetTimeouts(150*time.Millisecond, 100*time.Millisecond)
		a.Write([]byte("1234567"))
		a.Enable(actor.Read | actor.Write)
		time.Sleep(350 * time.Millisecond) // the bubble's clock: runs the test to 350 ms
		synctest.Wait()
		a.Close()
		b.Close()
		want := []hit{{actor.Timeout | actor.Writing, 100 * time.Millisecond}, {actor.Timeout | actor.Reading, 150 * time.Millisecond}}
		if !reflect.DeepEqual(aEvents, want) {
			t.Errorf("sender events = %v, want %v", aEvents, want)
		}
		if len(bEvents) != 0 {
			t.Errorf("receiver events = %v, want none", bEvents)
		}
		if got := a.Enabled(); got != 0 {
			t.Errorf("Enabled() after Close = %v, want 0", got)
		}
	})
}

// readTimeouts gives b callbacks that drain its input and record when,
// after now, each read timeout came; the slice is read once the test's
// bubble is idle (synctest.Wait) or b is closed.
func readTimeouts(b *actor.Bufferevent) *[]time.Duration {
	var fired []time.Duration
	start := time.Now()
	b.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { s.Input().Drain(s.Input().Len()) },
		Event: func(_ *actor.Session, ev actor.Event, _ error) {
			if ev == actor.Timeout|actor.Reading {
				fired = append(fired, time.Since(start))
			}
		},
	})
	return &fired
}

// Timeouts re-arm on Enable and are restarted by progress.
func TestTimeoutRearm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		a, b, _ := actor.NewPair(base, 0)
		fired := readTimeouts(b)
		b.SetTimeouts(100*time.Millisecond, 0)
		b.Enable(actor.Read)
		time.Sleep(60 * time.Millisecond)
		a.Write([]byte("x")) // progress at 60 ms restarts the timer
		time.Sleep(120 * time.Millisecond)
		synctest.Wait()
		b.Enable(actor.Read) // re-armed at 180 ms after firing at 160 ms
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		a.Close()
		b.Close()
		want := []time.Duration{160 * time.Millisecond, 280 * time.Millisecond}
		if !reflect.DeepEqual(*fired, want) {
			t.Errorf("read timeouts at %v, want %v", *fired, want)
		}
	})
}

// The read timeout does not run while the input is at the read high
// watermark (libevent suspends it there, BEV_SUSPEND_WM): a reader that
// leaves 10 bytes in its input for a second, under a 100 ms read timeout,
// gets no Timeout; once it drains them the timeout runs again and comes
// 100 ms later, once.
func TestReadTimeoutHeldAtHighWatermark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		a, b, _ := actor.NewPair(base, 0)
		var fired []time.Duration
		start := time.Now()
		b.SetCallbacks(actor.Callbacks{
			Read: func(*actor.Session) {}, // leaves the input where it is
			Event: func(_ *actor.Session, ev actor.Event, _ error) {
				fired = append(fired, time.Since(start))
			},
		})
		b.SetWatermark(actor.Read, 0, 10)
		b.SetTimeouts(100*time.Millisecond, 0)
		b.Enable(actor.Read)
		a.Write(make([]byte, 10)) // the input reaches its high watermark at once
		time.Sleep(time.Second)
		synctest.Wait()
		if len(fired) != 0 {
			t.Fatalf("events at %v while the input sat at its high watermark, want none", fired)
		}
		b.Do(func(s *actor.Session) { s.Input().Drain(10) })
		time.Sleep(time.Second)
		synctest.Wait()
		a.Close()
		b.Close()
		if want := []time.Duration{1100 * time.Millisecond}; !reflect.DeepEqual(fired, want) {
			t.Errorf("events at %v, want one read timeout at %v", fired, want)
		}
	})
}

// heldTransport accepts every write at once and holds it "downstream"
// until release, reporting what it holds through Buffered and waking the
// bufferevent through NotifyProgress, as a filter's view of its
// underlying bufferevent does.
type heldTransport struct {
	mu   sync.Mutex // guards following
	held int
	wake func()

	closed chan struct{}
	once   sync.Once
}

func newHeldTransport() *heldTransport {
	return &heldTransport{closed: make(chan struct{})}
}

func (h *heldTransport) Read(p []byte) (int, error) {
	<-h.closed
	return 0, io.EOF
}

func (h *heldTransport) Write(p []byte) (int, error) {
	h.mu.Lock()
	h.held += len(p)
	h.mu.Unlock()
	return len(p), nil
}

func (h *heldTransport) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *heldTransport) Buffered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

func (h *heldTransport) NotifyProgress(wake func()) {
	h.mu.Lock()
	h.wake = wake
	h.mu.Unlock()
}

// release lets n held bytes move on and wakes the bufferevent.
func (h *heldTransport) release(n int) {
	h.releaseQuietly(n)
	h.mu.Lock()
	wake := h.wake
	h.mu.Unlock()
	if wake != nil {
		wake()
	}
}

// releaseQuietly lets n held bytes move on without a signal, as a
// filter's underlying that drains but not to its low watermark.
func (h *heldTransport) releaseQuietly(n int) {
	h.mu.Lock()
	h.held -= n
	h.mu.Unlock()
}

// The write timeout runs while a buffered transport holds bytes, Progress
// restarts it, and it stops once the transport holds nothing.
func TestWriteTimeoutCoversTransportBuffer(t *testing.T) {
	tests := []struct {
		name    string
		release func(h *heldTransport) // run at 80 ms
		want    []actor.Event          // at 150 ms, then at 250 ms
		later   []actor.Event
	}{
		{"stuck", func(*heldTransport) {}, []actor.Event{actor.Timeout | actor.Writing}, nil},
		{"progress", func(h *heldTransport) { h.release(3) }, nil, []actor.Event{actor.Timeout | actor.Writing}},
		{"quiet progress", func(h *heldTransport) { h.releaseQuietly(3) }, nil, []actor.Event{actor.Timeout | actor.Writing}},
		{"drained", func(h *heldTransport) { h.release(7) }, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHeldTransport()
				b, err := actor.New(nil, h, actor.CloseOnFree)
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				defer b.Close()
				evs := b.Events()
				b.SetTimeouts(0, 100*time.Millisecond)
				b.Write([]byte("1234567"))
				time.Sleep(80 * time.Millisecond)
				tc.release(h)
				time.Sleep(70 * time.Millisecond)
				synctest.Wait()
				if got := timeouts(evs); len(got) != len(tc.want) || (len(got) == 1 && got[0] != tc.want[0]) {
					t.Fatalf("events by 150 ms = %v, want %v", got, tc.want)
				}
				time.Sleep(100 * time.Millisecond)
				synctest.Wait()
				if got := timeouts(evs); len(got) != len(tc.later) || (len(got) == 1 && got[0] != tc.later[0]) {
					t.Fatalf("events from 150 to 250 ms = %v, want %v", got, tc.later)
				}
			})
		})
	}
}

// countingClock is the real clock (virtual under synctest) counting what
// the bufferevents of its Base do with their timers.
type countingClock struct {
	mu                  sync.Mutex
	made, resets, stops int
}

func (c *countingClock) Now() time.Time { return time.Now() }

func (c *countingClock) AfterFunc(d time.Duration, f func()) actor.Timer {
	c.mu.Lock()
	c.made++
	c.mu.Unlock()
	return &countingTimer{t: time.AfterFunc(d, f), c: c}
}

func (c *countingClock) counts() (made, resets, stops int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.made, c.resets, c.stops
}

type countingTimer struct {
	t *time.Timer
	c *countingClock
}

func (t *countingTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.c.resets++
	t.c.mu.Unlock()
	t.t.Reset(d)
}

func (t *countingTimer) Stop() {
	t.c.mu.Lock()
	t.c.stops++
	t.c.mu.Unlock()
	t.t.Stop()
}

// Progress restarts a timeout without touching the clock's timer: one
// timer serves the read and the write timeout, and it is set again only
// when it fires before the deadline moved on. A read every 30 ms for
// 300 ms under a 100 ms read timeout (and a write timeout, armed by
// nothing) makes one timer and resets it at most once per 100 ms; the
// timeout still comes 100 ms after the last byte, and the timer is
// stopped once, at Free.
func TestTimeoutRestartsLazily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &countingClock{}
		base, err := actor.NewBaseConfig(actor.BaseConfig{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		a, b, _ := actor.NewPair(base, 0)
		fired := readTimeouts(b)
		b.SetTimeouts(100*time.Millisecond, 100*time.Millisecond)
		b.Enable(actor.Read | actor.Write)
		for range 10 {
			time.Sleep(30 * time.Millisecond)
			a.Write([]byte("x"))
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		made, resets, _ := clock.counts()
		if made != 1 || resets > 4 {
			t.Errorf("10 restarts over 300 ms made %d timers and reset them %d times, want 1 and at most 4", made, resets)
		}
		if want := []time.Duration{400 * time.Millisecond}; !reflect.DeepEqual(*fired, want) {
			t.Errorf("read timeouts at %v, want %v (100 ms after the last byte, at 300 ms)", *fired, want)
		}
		a.Close()
		b.Close()
		if _, _, stops := clock.counts(); stops != 1 {
			t.Errorf("the timer was stopped %d times, want once (at Free)", stops)
		}
	})
}

// An Enable that comes after a read timeout's timer fired, while the
// actor is busy and has not taken the timer yet, is the later call: the
// timeout is reported, reading stays enabled, and its timeout runs again
// from the Enable. Before, the actor's clearing of Read, made when it got
// to the timer, undid the Enable for good (found by FuzzSocketOps: a
// program's last Enable(Read) never read the peer's EOF).
func TestEnableAfterTimerFiredWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := actor.NewBase()
		defer base.Close()
		a, b, _ := actor.NewPair(base, 0)
		defer a.Close()
		defer b.Close()
		start := time.Now()
		var fired []time.Duration
		b.SetCallbacks(actor.Callbacks{
			Read: func(*actor.Session) {},
			Event: func(_ *actor.Session, ev actor.Event, _ error) {
				if ev == actor.Timeout|actor.Reading {
					fired = append(fired, time.Since(start))
				}
			},
		})
		b.SetTimeouts(100*time.Millisecond, 0)
		b.Enable(actor.Read)
		synctest.Wait() // the timeout runs from here: 100 ms
		hold := make(chan struct{})
		held := make(chan error, 1)
		go func() { held <- b.Do(func(*actor.Session) { <-hold }) }()
		time.Sleep(150 * time.Millisecond) // the timer fires; the actor is in Do
		if err := b.Enable(actor.Read); err != nil {
			t.Fatalf("Enable(Read) = %v", err)
		}
		close(hold)
		if err := <-held; err != nil {
			t.Fatalf("Do() = %v", err)
		}
		synctest.Wait()
		if b.Enabled()&actor.Read == 0 {
			t.Fatalf("Enabled() = %v after an Enable(Read) that came after the timer fired, want Read", b.Enabled())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		// The first timeout, due at 100 ms and taken once Do returned;
		// the second 100 ms after that, armed by the Enable the actor
		// took next; none after, since that one disabled reading.
		if want := []time.Duration{150 * time.Millisecond, 250 * time.Millisecond}; !reflect.DeepEqual(fired, want) {
			t.Errorf("read timeouts at %v, want %v", fired, want)
		}
		if b.Enabled()&actor.Read != 0 {
			t.Errorf("Enabled() = %v after the second timeout, want Read cleared", b.Enabled())
		}
	})
}
