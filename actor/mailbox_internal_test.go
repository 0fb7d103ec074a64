package actor

import (
	"sync/atomic"
	"testing"
)

// Tests of mailbox.go's internals: what a post allocates and whom it wakes.

// A bufferevent's first posts (a relay side's watermark, timeouts,
// callbacks and Enable), and as many more after the actor's first take,
// allocate one block between them: not the arrays of 1, 2 and 4 messages
// that appending to a nil queue, and then to a nil spare, would make.
func TestMailboxFirstBlock(t *testing.T) {
	const runs = 20
	boxes := make([]mailbox, runs+1) // AllocsPerRun calls f runs+1 times
	for i := range boxes {
		boxes[i].init()
	}
	next := 0
	var lost int
	allocs := testing.AllocsPerRun(runs, func() {
		m := &boxes[next]
		next++
		var spare []message // the actor's, nil until its first take
		for round := range 2 {
			for i := range mailHalf {
				m.post(message{kind: msgEnable, dir: Dir(i + 1), mode: FlushMode(round)})
			}
			q := m.take(spare)
			if len(q) != mailHalf {
				lost++
			}
			for i := range q {
				if q[i].dir != Dir(i+1) || q[i].mode != FlushMode(round) {
					lost++
				}
				q[i] = message{}
			}
			spare = q[:0]
		}
	})
	if lost != 0 {
		t.Fatalf("takes lost or reordered %d messages", lost)
	}
	if allocs != 1 {
		t.Errorf("%d posts and 2 takes allocated %v times, want 1 (one block)", 2*mailHalf, allocs)
	}
}

// Only a post that finds the queue empty wakes the actor; the posts
// after it, before the actor takes the queue, ride on that wake-up and
// do not set the read deadline of a socket the actor waits in once more.
// The next post after a take wakes it again.
func TestMailboxWakesOncePerBurst(t *testing.T) {
	r := &deadlineRecorder{}
	p := &parker{conn: r}
	var m mailbox
	m.init()
	m.parker.Store(p)

	p.wait()
	m.post(message{kind: msgWake})
	if _, sets := r.get(); sets != 1 {
		t.Fatalf("the first post set the deadline %d times, want 1", sets)
	}
	// As if the actor had seen no wake-up yet and waited again: a post to
	// the queue it has not taken must not wake it a second time.
	p.state.Store(parkWaiting)
	m.post(message{kind: msgTimeouts})
	m.postOut(message{kind: msgFlush}, 0, new(atomic.Int64))
	if _, sets := r.get(); sets != 1 {
		t.Fatalf("posts to a queue not yet taken set the deadline %d times in all, want 1", sets)
	}
	if len(m.wakeC) != 1 {
		t.Fatalf("wakeC holds %d wake-ups, want 1", len(m.wakeC))
	}
	<-m.wakeC
	q := m.take(nil)
	if len(q) != 3 || q[0].kind != msgWake || q[1].kind != msgTimeouts || q[2].kind != msgFlush {
		t.Fatalf("take returned %d messages %v, want the 3 posted in order", len(q), q)
	}

	// After the take the queue is empty: the next post wakes again.
	m.postCopy([]byte("x"), new(atomic.Int64))
	if _, sets := r.get(); sets != 2 {
		t.Fatalf("a post after the take set the deadline %d times in all, want 2", sets)
	}
	if len(m.wakeC) != 1 {
		t.Fatalf("wakeC holds %d wake-ups after a post to an empty queue, want 1", len(m.wakeC))
	}
	for _, msg := range m.close() {
		if msg.c != nil {
			msg.c.release()
		}
	}
}

// New bufferevents share one empty watermark; setting one bufferevent's
// marks leaves every other's as it was.
func TestWatermarkNotShared(t *testing.T) {
	b1, err := New(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	b2, err := New(nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if err := b1.SetWatermark(Read|Write, 3, 10); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Dir{Read, Write} {
		if low, high, _ := b1.Watermark(d); low != 3 || high != 10 {
			t.Errorf("b1's %v marks are (%d, %d), want (3, 10)", d, low, high)
		}
		if low, high, _ := b2.Watermark(d); low != 0 || high != 0 {
			t.Errorf("b2's %v marks are (%d, %d) after b1's were set, want (0, 0)", d, low, high)
		}
	}
}

// A Send's piece is numbered after every post made before it
// (reserveOut), and takeBefore gives exactly those, in order, leaving the
// posts made after the piece queued: the actor, handed the piece while
// the mailbox still held a Write from before the Send, puts the Write's
// bytes first and a Write made after the Send returned after.
func TestMailboxTakeBefore(t *testing.T) {
	var m mailbox
	m.init()
	var out atomic.Int64
	m.postCopy([]byte("before"), &out)
	m.post(message{kind: msgEnable, dir: Read})
	after, queued, ok := m.reserveOut(4, &out)
	if !ok || after != 2 || !queued {
		t.Fatalf("reserveOut = %d, %v, %v; want 2 (two posts queued before it), true, true", after, queued, ok)
	}
	m.postCopy([]byte("later"), &out)
	var spare []message
	q := m.takeBefore(after, spare)
	if len(q) != 2 || q[0].kind != msgWrite || string(q[0].c.bytes()) != "before" || q[1].kind != msgEnable {
		t.Fatalf("takeBefore(%d) gave %d messages, want the Write and the Enable posted before the piece", after, len(q))
	}
	if n := m.queued.Load(); n != 1 || len(m.q) != 1 || string(m.q[0].c.bytes()) != "later" {
		t.Fatalf("after takeBefore: %d queued, want the later Write alone", n)
	}
	if q := m.takeBefore(after, q[:0]); len(q) != 0 {
		t.Errorf("a second takeBefore(%d) gave %d messages, want none: the later Write came after the piece", after, len(q))
	}
	// The numbering goes on across a whole take.
	if q := m.take(q[:0]); len(q) != 1 {
		t.Fatalf("take gave %d messages, want 1", len(q))
	}
	m.post(message{kind: msgWake})
	if after, queued, _ := m.reserveOut(1, &out); after != 4 || !queued {
		t.Errorf("reserveOut after three taken and one queued = %d, %v; want 4, true", after, queued)
	}
	m.take(nil)
	if after, queued, _ := m.reserveOut(1, &out); after != 4 || queued {
		t.Errorf("reserveOut with nothing queued = %d, %v; want 4 (the next post's place), false", after, queued)
	}
}
