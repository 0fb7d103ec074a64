package actor

import (
	"context"
	"sync"
	"sync/atomic"
)

type msgKind uint8

const (
	msgWake         msgKind = iota // re-evaluate; nothing else to do
	msgWrite                       // c: a chunk copied from the caller
	msgWriteOwned                  // p: bytes handed over
	msgWriteBuffer                 // buf: chunks moved from the caller's Buffer
	msgFunc                        // fn, then close done
	msgEnable                      // dir: re-arm timers, deliver held input
	msgTimeouts                    // re-arm both timers
	msgFlush                       // dir, mode
	msgTrigger                     // dir, topt
	msgTriggerEvent                // ev, topt
	msgConnect                     // ctx, dial
	msgSetTransport                // t, replace
	msgDrain                       // done: closed once all output is written
	msgConnected                   // t, err: the dial finished
	msgProgress                    // a buffered transport's held bytes moved on
	msgCallbacks                   // the first callbacks were set: deliver held events
	msgTimer                       // the clock timer fired (maybe late: see Clock)
	msgTurn                        // the Base's dispatcher hands over a deferred-callback turn
	msgWriteFailed                 // tr.err: a write through the lent sink failed (lend.go)
)

// message is what other goroutines post to the actor. It is a value type
// so that posting allocates nothing. Its small fields come first, in an
// order that packs them into 16 bytes: 80 in all, so that the mailbox's
// first block of eight (grow), with the allocator's 8-byte header, takes
// a 704-byte allocation, not 768.
type message struct {
	kind msgKind
	dir  Dir
	ev   Event
	topt TriggerOption
	mode FlushMode
	c    *chunk
	p    []byte
	buf  *Buffer
	fn   func(*Session)
	done chan struct{}
	tr   *transportMsg // msgConnect, msgSetTransport, msgConnected
}

// transportMsg is what the rare transport messages carry. It lives apart
// so that every other message, and the mailbox's arrays of them that each
// bufferevent keeps for reuse, stay small.
type transportMsg struct {
	t       Transport
	replace bool
	ctx     context.Context
	dial    DialFunc
	err     error
	// handshake: a msgConnected with the result of the transport's own
	// handshake (startHandshake), not of a connect's dial.
	handshake bool
}

// mailbox is the actor's unbounded queue. Posting never blocks, so a
// callback of one bufferevent may call any state-changing method of
// another without risk of deadlock.
type mailbox struct {
	mu     sync.Mutex // guards following
	q      []message
	closed bool
	// took counts the messages take and takeBefore ever returned: took
	// plus len(q) numbers the next post, the place reserveOut hands a
	// Send's piece (see takeBefore).
	took uint64
	// queued is len(q), stored under mu, for a writer that would borrow
	// the actor's sink (borrowSink): while anything waits here, a write
	// through the sink would overtake it.
	queued atomic.Int32

	wakeC chan struct{} // buffered(1): q is not empty

	// block is the array the first post makes (grow), and reserve its
	// second half: the actor's first spare, handed over by the first
	// take. release gives the block back while the actor idles.
	block   *mailBlock
	reserve []message

	// parker is set while the actor may wait in its socket instead of on
	// wakeC (see parker): wake then ends that wait too.
	parker atomic.Pointer[parker]
}

// init makes wakeC; the mailbox is then ready.
func (m *mailbox) init() { m.wakeC = make(chan struct{}, 1) }

// post queues msg and reports whether the actor will see it. Only a post
// that finds the queue empty wakes the actor: one that finds messages
// queued rides on the wake-up of the post that queued the first of them,
// which comes after that post's append, and the actor takes the queue
// only after a wake-up (see handleMail: a take between the two would
// have left this post an empty queue), so that take gets this message
// too.
func (m *mailbox) post(msg message) bool { return m.postOut(msg, 0, nil) }

// postOut is post for a message that carries n bytes for the output: it
// adds n to out (the bufferevent's published output length) under the
// lock, so that the count never outlives the actor's reset of out when it
// stops (the mailbox is closed before that).
func (m *mailbox) postOut(msg message, n int, out *atomic.Int64) bool {
	first, ok := m.lockForPost(n, out)
	if !ok {
		return false
	}
	m.q = append(m.q, msg)
	m.unlockAfterPost(first)
	return true
}

// lockForPost locks the mailbox for a post and reports ok, or, once it is
// closed, unlocks it and reports false. Locked, it adds n to out (when
// out is set), gives the queue its array and reports whether the queue
// was empty (first): that post wakes the actor (see post).
func (m *mailbox) lockForPost(n int, out *atomic.Int64) (first, ok bool) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return false, false
	}
	if out != nil {
		out.Add(int64(n))
	}
	if cap(m.q) == 0 {
		m.grow()
	}
	return len(m.q) == 0, true
}

// unlockAfterPost ends a post begun with lockForPost: it publishes the
// queue's length, unlocks, and wakes the actor for a first post.
func (m *mailbox) unlockAfterPost(first bool) {
	m.queued.Store(int32(len(m.q)))
	m.mu.Unlock()
	if first {
		m.wake()
	}
}

// reserveOut adds n to out, as postOut does, for bytes about to be handed
// over on the Out channel; it reports false, adding nothing, once the
// mailbox is closed. A reservation the actor did not take is given back
// with unreserveOut. It returns the piece's place among the posts: every
// message posted before the call is numbered below it, so the actor,
// given the piece, first handles those (takeBefore), and a Write that
// returned before a Send keeps its bytes ahead of the Send's; queued
// reports whether any of those is still queued.
func (m *mailbox) reserveOut(n int, out *atomic.Int64) (after uint64, queued, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, false, false
	}
	out.Add(int64(n))
	return m.took + uint64(len(m.q)), len(m.q) > 0, true
}

// unreserveOut takes back a reservation of n bytes the actor never took;
// once the mailbox is closed the actor has reset out, and there is nothing
// to take back.
func (m *mailbox) unreserveOut(n int, out *atomic.Int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		out.Add(-int64(n))
	}
}

// postCopy copies p into pooled chunks and queues one msgWrite per chunk,
// in order, under one lock, adding len(p) to out as postOut does.
func (m *mailbox) postCopy(p []byte, out *atomic.Int64) bool {
	first, ok := m.lockForPost(len(p), out)
	if !ok {
		return false
	}
	for len(p) > 0 {
		c := newChunk(len(p))
		n := copy(c.free(), p)
		c.commit(n)
		p = p[n:]
		m.q = append(m.q, message{kind: msgWrite, c: c})
	}
	m.unlockAfterPost(first)
	return true
}

// wake wakes the actor: it fills wakeC, which the actor selects on, and
// ends its wait in its socket if it waits there. Every wake-up of the
// actor from another goroutine goes through here.
func (m *mailbox) wake() {
	select {
	case m.wakeC <- struct{}{}:
	default:
	}
	if p := m.parker.Load(); p != nil {
		p.wake()
	}
}

// mailHalf is how many messages each half of the mailbox's first block
// holds: what a bufferevent set up as a relay's side posts at once
// (watermarks, timeouts, callbacks, Enable or a connect).
const mailHalf = 4

// A mailBlock is a mailbox's first array: two halves of mailHalf
// messages, the queue's and the actor's first spare.
type mailBlock [2 * mailHalf]message

// mailBlocks holds the blocks of mailboxes whose actors idle in their
// sockets (release), for the next mailbox a post finds without one: an
// idle connection keeps none (704 bytes each), a connection posted to
// now and then takes one back without allocating, and the GC empties
// the pool of blocks no post came for.
var mailBlocks = sync.Pool{New: func() any { return new(mailBlock) }}

// grow gives the queue its first array, called under mu by a post that
// finds none: one block of two halves, the queue's and the actor's first
// spare (reserve), in place of the arrays of 1, 2 and 4 messages that
// appending to a nil queue would make for the first few posts. A
// bufferevent nobody posts to makes none.
func (m *mailbox) grow() {
	m.block = mailBlocks.Get().(*mailBlock)
	m.q = m.block[:0:mailHalf]
	m.reserve = m.block[mailHalf:mailHalf]
}

// release gives the block back to mailBlocks when nothing is queued,
// with the actor's spare (which it then sets to nil): the mailbox holds
// no array, as a new one, until the next post grows it again. Only
// the actor calls it, between messages: no message taken is still being
// handled, so the queue, the reserve and spare are all that may hold the
// block (or arrays that appends grew past it, left to the GC).
func (m *mailbox) release(spare *[]message) {
	m.mu.Lock()
	if len(m.q) > 0 {
		m.mu.Unlock()
		return
	}
	b := m.block
	m.q, m.reserve, m.block = nil, nil, nil
	m.mu.Unlock()
	*spare = nil
	if b != nil {
		clear(b[:]) // appends past it left copies of the messages
		mailBlocks.Put(b)
	}
}

// take swaps the queue for spare (or, the first time, the reserve) and
// returns what was queued.
func (m *mailbox) take(spare []message) []message {
	m.mu.Lock()
	if cap(spare) == 0 {
		spare, m.reserve = m.reserve, nil
	}
	q := m.q
	m.q = spare[:0]
	m.took += uint64(len(q))
	m.queued.Store(0)
	m.mu.Unlock()
	return q
}

// takeBefore returns, in spare's array, the messages numbered below after
// (a place reserveOut gave) that are still queued, and leaves the later
// ones queued: those may have been posted after the piece was handed
// over, and go after it. It does not touch wakeC, which stays filled for
// what is left.
func (m *mailbox) takeBefore(after uint64, spare []message) []message {
	m.mu.Lock()
	defer m.mu.Unlock()
	if after <= m.took {
		return spare[:0]
	}
	n := min(int(after-m.took), len(m.q)) // a closed mailbox queues none
	msgs := append(spare[:0], m.q[:n]...)
	left := copy(m.q, m.q[n:])
	clear(m.q[left:])
	m.q = m.q[:left]
	m.took += uint64(n)
	m.queued.Store(int32(left))
	return msgs
}

// close refuses later posts and returns what was still queued.
func (m *mailbox) close() []message {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	q := m.q
	m.q = nil
	return q
}
