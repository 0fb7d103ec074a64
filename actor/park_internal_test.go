package actor

import (
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testkit"
)

// deadlineRecorder is a deadliner that remembers the read and write
// deadlines.
type deadlineRecorder struct {
	mu    sync.Mutex
	d     time.Time
	sets  int
	wd    time.Time // the write deadline
	wsets int
}

func (r *deadlineRecorder) SetReadDeadline(d time.Time) error {
	r.mu.Lock()
	r.d, r.sets = d, r.sets+1
	r.mu.Unlock()
	return nil
}

func (r *deadlineRecorder) SetWriteDeadline(d time.Time) error {
	r.mu.Lock()
	r.wd, r.wsets = d, r.wsets+1
	r.mu.Unlock()
	return nil
}

func (r *deadlineRecorder) getWrite() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wd, r.wsets
}

func (r *deadlineRecorder) get() (time.Time, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.d, r.sets
}

func TestParkerKick(t *testing.T) {
	r := &deadlineRecorder{}
	p := &parker{conn: r}
	p.wake()
	if _, sets := r.get(); sets != 0 {
		t.Fatalf("a kick while the actor runs set the deadline %d times, want 0", sets)
	}
	p.wait()
	if p.unpark() {
		t.Error("done reported a kick nobody made")
	}
	if _, sets := r.get(); sets != 0 {
		t.Fatalf("an unkicked wait set the deadline %d times, want 0", sets)
	}
	p.wait()
	p.wake()
	p.wake() // a second kicker finds the wait already ended
	if d, sets := r.get(); sets != 1 || !d.Equal(aLongTimeAgo) {
		t.Fatalf("after two kicks: deadline %v set %d times, want %v once", d, sets, aLongTimeAgo)
	}
	if !p.unpark() {
		t.Error("done did not report the kick")
	}
	if d, sets := r.get(); sets != 2 || !d.IsZero() {
		t.Fatalf("after done: deadline %v set %d times, want cleared by a second set", d, sets)
	}
}

// A wait for room (waitRoom) is ended through the write deadline, which
// unpark clears again; the read deadline is left alone, and a read wait
// after it uses the read deadline again.
func TestParkerKickRoom(t *testing.T) {
	r := &deadlineRecorder{}
	p := &parker{conn: r}
	p.waitRoom()
	if p.unpark() {
		t.Error("unpark reported a kick nobody made")
	}
	p.waitRoom()
	p.wake()
	p.wake()
	if d, sets := r.getWrite(); sets != 1 || !d.Equal(aLongTimeAgo) {
		t.Fatalf("after two kicks: write deadline %v set %d times, want %v once", d, sets, aLongTimeAgo)
	}
	if !p.unpark() {
		t.Error("unpark did not report the kick")
	}
	if d, sets := r.getWrite(); sets != 2 || !d.IsZero() {
		t.Fatalf("after unpark: write deadline %v set %d times, want cleared by a second set", d, sets)
	}
	if _, sets := r.get(); sets != 0 {
		t.Fatalf("waits for room set the read deadline %d times, want 0", sets)
	}
	p.wait()
	p.wake()
	if !p.unpark() {
		t.Error("unpark did not report the kick of a read wait")
	}
	if d, sets := r.get(); sets != 2 || !d.IsZero() {
		t.Fatalf("read wait: read deadline %v set %d times, want set and cleared", d, sets)
	}
	if _, sets := r.getWrite(); sets != 2 {
		t.Fatalf("a read wait set the write deadline (%d sets, want 2)", sets)
	}
}

// However kicks and waits interleave, the actor never runs on with the
// kick's past deadline still set: that would end its next wait at once,
// or fail the read of a socket that is not its to time out.
//
// Every goroutine here yields in its loop: kickers that spun without
// yielding left the waiting goroutine a time slice only every few
// milliseconds, and the test took minutes.
func TestParkerConcurrentKicks(t *testing.T) {
	r := &deadlineRecorder{}
	p := &parker{conn: r}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.wake()
				runtime.Gosched()
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	kicked := 0
	end := time.Now().Add(2 * time.Second) // a bound, not a wait: most runs end by count
	for i := 0; i < 5000 && time.Now().Before(end); i++ {
		waiting := int32(parkWaiting)
		if i%2 == 0 {
			p.wait()
		} else {
			p.waitRoom() // a wait for room, ended through the write deadline
			waiting = parkWaitingRoom
		}
		// Let kickers find the actor waiting, as a socket read would.
		for range 8 {
			if p.state.Load() != waiting {
				break
			}
			runtime.Gosched()
		}
		if p.unpark() {
			kicked++
		}
		if d, _ := r.get(); !d.IsZero() {
			t.Fatalf("round %d: the actor runs with the read deadline %v set", i, d)
		}
		if d, _ := r.getWrite(); !d.IsZero() {
			t.Fatalf("round %d: the actor runs with the write deadline %v set", i, d)
		}
	}
	if kicked == 0 {
		t.Error("no wait was kicked: the test did not exercise the race")
	}
}

// A Write to an actor waiting in its socket costs one turn: the wake-up
// that ends the wait is handled at once (takeWakeUp), with no turn that
// finds nothing and no second wait that finds the post at once. (A write
// callback keeps the write on the actor: see TestWriteThroughLentSink.)
func TestWriteToParkedActorOneTurn(t *testing.T) {
	testParkedWriteTurns(t, Callbacks{Write: func(*Session) {}}, 2)
}

// A Write to a socket's actor that waits with nothing to write and no
// write callback goes through its lent sink on the writer's goroutine:
// the actor takes no turn for it, and the output never holds the bytes.
func TestWriteThroughLentSink(t *testing.T) {
	testParkedWriteTurns(t, Callbacks{}, 1)
}

// testParkedWriteTurns writes to a parked socket actor with callbacks cbs,
// one byte at a time, and checks that each write arrives and that the
// actor took want turns between two Do calls around it (the first Do's
// own turn included).
func testParkedWriteTurns(t *testing.T, cbs Callbacks, want uint32) {
	b, c := socketBufferevent(t)
	b.SetCallbacks(cbs)
	b.Enable(Read)
	turns := func() uint32 {
		var n uint32
		if err := b.Do(func(*Session) { n = b.a.turns }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	buf := make([]byte, 1)
	turns() // a turn that takes the wake-ups the set-up left, if any
	for i := range 20 {
		t0 := turns() // the Do's own turn follows
		if want == 1 {
			waitLent(t, b) // the Do's turn over, the actor waits in its socket again
		}
		if err := b.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("write %d: read %v, %v", i, buf, err)
		}
		if d := turns() - t0; d != want {
			t.Fatalf("write %d: %d turns between two Do calls around it, want %d", i, d, want)
		}
		if n := b.OutputLen(); n != 0 {
			t.Fatalf("write %d: OutputLen %d after the peer read it all", i, n)
		}
	}
}

// waitLent waits until b's actor has lent its sink (it waits in its
// socket with nothing to write), or fails the test after testkit.WaitTime.
func waitLent(t *testing.T, b *Bufferevent) {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitTime)
	for b.sinkState.Load() != sinkLent {
		if time.Now().After(deadline) {
			t.Fatalf("the actor did not lend its sink within %v", testkit.WaitTime)
		}
		runtime.Gosched()
	}
}

// A socket's actor that goes back to waiting in its socket after posts
// gives its mailbox's block back to the pool (mailbox.release), so that
// an idle connection holds none; the next post makes the mailbox grow
// again, and what it carries arrives.
func TestIdleSocketGivesMailBlockBack(t *testing.T) {
	b, c := socketBufferevent(t)
	b.SetCallbacks(Callbacks{})
	b.Enable(Read)
	held := func() bool {
		b.mail.mu.Lock()
		defer b.mail.mu.Unlock()
		return b.mail.block != nil || cap(b.mail.q) != 0 || cap(b.mail.reserve) != 0
	}
	c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	buf := make([]byte, 1)
	for i := range 3 {
		// Set-up's posts, then a Do: each is taken, then the actor waits
		// in its socket again (it lends its sink just after).
		if err := b.Do(func(*Session) {}); err != nil {
			t.Fatal(err)
		}
		waitLent(t, b)
		if held() {
			t.Fatalf("round %d: the mailbox holds its block while the actor waits in its socket", i)
		}
		if err := b.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("round %d: read %v, %v", i, buf, err)
		}
	}
}
