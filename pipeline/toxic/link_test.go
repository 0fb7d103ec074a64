package toxic

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/clock"
)

// A latency link's queue of pending chunks stays as long as what it
// holds, even on a stream that never lets it drain: chunks leave its front
// as new ones join its back.
func TestLatencyQueueBounded(t *testing.T) {
	l := (&Latency{Latency: 10}).newLink(rand.New(rand.NewPCG(1, 2)), clock.Real()).(*latencyLink)
	var src, dst actor.Buffer
	now := time.Unix(1000, 0)
	for i := range 10000 {
		src.Write([]byte{byte(i)})
		l.pass(&dst, &src, -1, now, false)
		now = now.Add(time.Millisecond)
	}
	if l.held() != 10 && l.held() != 11 {
		t.Fatalf("holds %d bytes, want the last 10 ms of them", l.held())
	}
	if c := cap(l.due); c > 64 {
		t.Errorf("the queue of 10 pending chunks has grown to %d", c)
	}
	// What passed came in order.
	got := make([]byte, dst.Len())
	dst.Read(got)
	for i, c := range got {
		if c != byte(i) {
			t.Fatalf("byte %d is %d", i, c)
		}
	}
}

// A chunk due at once with nothing held before it passes as far as the
// limit lets; the rest waits in the link, and passes first next time.
func TestLatencyDueNowWithLimit(t *testing.T) {
	l := (&Latency{Jitter: 1}).newLink(rand.New(rand.NewPCG(1, 2)), clock.Real()).(*latencyLink) // 0 ± 1 ms: never later than now
	var src, dst actor.Buffer
	now := time.Unix(1000, 0)
	src.Write([]byte("abcde"))
	if next, _ := l.pass(&dst, &src, 3, now, false); !next.IsZero() || dst.Len() != 3 || l.held() != 2 {
		t.Fatalf("next %v, passed %d, held %d; want 3 passed, 2 held, no wait", next, dst.Len(), l.held())
	}
	src.Write([]byte("f"))
	l.pass(&dst, &src, -1, now, false)
	got := make([]byte, dst.Len())
	dst.Read(got)
	if string(got) != "abcdef" || l.held() != 0 {
		t.Fatalf("got %q, held %d; want abcdef, 0", got, l.held())
	}
}
