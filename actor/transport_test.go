package actor_test

import (
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/actor"
)

// heldTransport accepts every write at once and holds it "downstream"
// until release, reporting what it holds through Buffered and Progress,
// as a filter's view of its underlying bufferevent does.
type heldTransport struct {
	mu   sync.Mutex // guards following
	held int

	progress chan struct{} // buffered(1)
	closed   chan struct{}
	once     sync.Once
}

func newHeldTransport() *heldTransport {
	return &heldTransport{progress: make(chan struct{}, 1), closed: make(chan struct{})}
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

func (h *heldTransport) Progress() <-chan struct{} { return h.progress }

// release lets n held bytes move on and signals Progress.
func (h *heldTransport) release(n int) {
	h.releaseQuietly(n)
	select {
	case h.progress <- struct{}{}:
	default:
	}
}

// releaseQuietly lets n held bytes move on without a signal, as a
// filter's underlying that drains but not to its low watermark.
func (h *heldTransport) releaseQuietly(n int) {
	h.mu.Lock()
	h.held -= n
	h.mu.Unlock()
}

func timeouts(evs <-chan actor.EventInfo) []actor.Event {
	var got []actor.Event
	for {
		select {
		case e := <-evs:
			got = append(got, e.Event)
		default:
			return got
		}
	}
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
