package actor

import "sync"

// pairLink joins the two ends of a pair until either is closed.
type pairLink struct {
	mu   sync.Mutex // guards following
	ends [2]*Bufferevent
}

func (l *pairLink) unlink() {
	l.mu.Lock()
	l.ends = [2]*Bufferevent{}
	l.mu.Unlock()
}

// PairMaxIO is the per-read and per-write maximum a pair's ends start
// with. libevent's pair moves data with no per-operation limit; moving
// several 64 KiB chunks per handoff keeps the handoffs between the two
// actors few. SetMaxRead and SetMaxWrite change it as on any bufferevent.
const PairMaxIO = 4 * maxChunkSize

// NewPair returns two bufferevents wired to each other in memory
// (libevent's bufferevent_pair_new): what one writes, the other reads. The
// transport is a synchronous in-memory pipe, so bytes stay in the writer's
// output until the reader has room, and the transfer is capped by the
// receiver's read high watermark. Flush(Write, Finished) on one end gives
// the other Reading|EOF once every byte is delivered, and so does closing
// one end (libevent gives no EOF there, its issue #93; a pair here behaves
// like a socketpair). Both ends start as New's do: writing enabled,
// reading disabled. The pipe belongs to the pair and is closed with each
// end whatever the options. It fails as New does.
func NewPair(base *Base, opts Option) (*Bufferevent, *Bufferevent, error) {
	p1, p2 := newPipe()
	a, err := newBufferevent(base, p1, opts, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := newBufferevent(base, p2, opts, nil, nil)
	if err != nil {
		a.a.ownsT = true
		a.start()
		a.Close()
		return nil, nil, err
	}
	link := &pairLink{ends: [2]*Bufferevent{a, b}}
	for _, e := range link.ends {
		e.maxRead.Store(PairMaxIO)
		e.maxWrite.Store(PairMaxIO)
		e.pair = link
		e.a.ownsT = true
		e.start()
	}
	return a, b, nil
}

// Partner returns the other end of a pair (libevent's pair_get_partner),
// or nil when b is not a pair or either end has been closed.
func (b *Bufferevent) Partner() *Bufferevent {
	if b.zero() || b.pair == nil {
		return nil
	}
	b.pair.mu.Lock()
	defer b.pair.mu.Unlock()
	switch b {
	case b.pair.ends[0]:
		return b.pair.ends[1]
	case b.pair.ends[1]:
		return b.pair.ends[0]
	}
	return nil
}
