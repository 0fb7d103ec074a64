package main

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
)

// pairRelay is a relay between two in-memory pairs: the test holds the
// far ends, clientPeer (what a client would be) and targetPeer.
type pairRelay struct {
	p                      *proxy
	r                      *relay
	clientPeer, targetPeer *actor.Bufferevent
	paused                 chan struct{}
}

func newPairRelay(t *testing.T) *pairRelay {
	t.Helper()
	base := actor.NewBase()
	t.Cleanup(func() { base.Close() })
	pr := &pairRelay{paused: make(chan struct{}, 1)}
	pr.p = &proxy{
		cfg:   &config{},
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		stats: newStats(),
		open:  make(map[*relay]struct{}),
		idle:  make(chan struct{}),
		onPause: func() {
			select {
			case pr.paused <- struct{}{}:
			default:
			}
		},
	}
	t.Cleanup(func() {
		pr.p.kill(errShutdown)
		pr.p.wg.Wait()
	})
	client, clientPeer, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	target, targetPeer, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	pr.clientPeer, pr.targetPeer = clientPeer, targetPeer
	pr.r = newRelay(pr.p, 1)
	pr.r.client.b, pr.r.target.b = client, target
	pr.p.add(pr.r)
	pr.r.track()
	pr.r.begin(client, target)
	return pr
}

// readAll collects what b receives until EOF, within 30 s.
func readAll(t *testing.T, b *actor.Bufferevent) []byte {
	t.Helper()
	var got []byte
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	in := b.In()
	for {
		select {
		case p, ok := <-in:
			if !ok {
				return got
			}
			got = append(got, p...)
		case <-timer.C:
			t.Fatalf("no EOF within 30 s; %d bytes so far", len(got))
		}
	}
}

// waitClosed waits until the relay has closed both sides and finished.
func (pr *pairRelay) waitClosed(t *testing.T) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		pr.p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		pr.p.kill(errShutdown)
		<-done
		t.Fatal("the relay did not finish within 30 s of both ends closing")
	}
}

// TestBackpressure: a client that does not read holds the target back.
// The target stops being read once about 512 KiB wait for the client, and
// everything arrives, in order, once the client reads.
func TestBackpressure(t *testing.T) {
	pr := newPairRelay(t)
	data := randomBytes(t, 8<<20)
	if err := pr.targetPeer.Write(data); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pr.paused:
	case <-time.After(30 * time.Second):
		t.Fatal("the target was never paused although the client reads nothing")
	}
	// Nothing more is read from the target while it is paused: what was
	// moved is all the proxy holds for the client.
	moved := pr.r.target.moved.Load()
	// A pair reads up to PairMaxIO at once, and the reads that land
	// between the client's output filling and the target's Disable(Read)
	// reaching its actor (a few hand-offs: up to ~5 reads seen under
	// load) are moved too. Far below the 8 MiB written, which is the point.
	if high := int64(maxOutput + 8*actor.PairMaxIO); moved < maxOutput || moved > high {
		t.Errorf("paused after moving %d bytes to the client, want %d to %d", moved, maxOutput, high)
	}
	t.Logf("paused after %d bytes", moved)
	// The target pauses itself in its read callback, within one read of
	// the mark: the client's output never held more than that, however
	// far behind the client's actor ran.
	if peak, high := pr.p.stats.peakHeld.Load(), int64(maxOutput+actor.PairMaxIO); peak < maxOutput || peak > high {
		t.Errorf("the client's output held up to %d bytes, want %d to %d", peak, maxOutput, high)
	}
	if err := pr.targetPeer.Flush(actor.Write, actor.Finished); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, pr.clientPeer) // reading resumes the target
	if !bytes.Equal(got, data) {
		t.Fatalf("the client got %d bytes, want the %d sent, in order", len(got), len(data))
	}
	if n := pr.p.stats.pauses.Load(); n < 2 {
		t.Errorf("%d backpressure pauses for 8 MiB, want several", n)
	}
	pr.clientPeer.Flush(actor.Write, actor.Finished)
	pr.waitClosed(t)
	if pr.r.cause == nil || pr.r.cause.Error() != "target closed" {
		t.Errorf("cause = %v, want %q", pr.r.cause, "target closed")
	}
}

// TestBothWays relays 4 MiB each way at once, so that both sides' read
// callbacks write into each other and both pause and resume each other,
// thousands of times: it must finish, with every byte.
func TestBothWays(t *testing.T) {
	pr := newPairRelay(t)
	up, down := randomBytes(t, 4<<20), randomBytes(t, 4<<20)
	pr.clientPeer.Write(up)
	pr.targetPeer.Write(down)
	pr.clientPeer.Flush(actor.Write, actor.Finished)
	pr.targetPeer.Flush(actor.Write, actor.Finished)
	gotUp := make(chan []byte, 1)
	go func() {
		var got []byte
		for p := range pr.targetPeer.In() {
			got = append(got, p...)
		}
		gotUp <- got
	}()
	gotDown := readAll(t, pr.clientPeer)
	if !bytes.Equal(gotDown, down) {
		t.Errorf("the client got %d bytes, want the %d sent, in order", len(gotDown), len(down))
	}
	select {
	case got := <-gotUp:
		if !bytes.Equal(got, up) {
			t.Errorf("the target got %d bytes, want the %d sent, in order", len(got), len(up))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the target's stream did not end")
	}
	pr.waitClosed(t)
	if c, g := pr.r.client.moved.Load(), pr.r.target.moved.Load(); c != int64(len(up)) || g != int64(len(down)) {
		t.Errorf("moved %d up and %d down, want %d and %d", c, g, len(up), len(down))
	}
}
