package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bevgo/bev/limiter"
)

// ErrNoRateLimit is returned by DecrementReadLimit and DecrementWriteLimit
// on a bufferevent without its own rate limit (libevent asserts there).
var ErrNoRateLimit = errors.New("actor: bufferevent has no rate limit")

// rateState is a bufferevent's rate limiting: its own bucket and its group
// membership, either may be nil. It is immutable once published; a change
// publishes a new one, and the loops load it before every operation.
type rateState struct {
	bucket *limiter.Bucket
	group  *limiter.Group
	member *limiter.Member
}

// limited reports whether a bucket or a group limits the bufferevent.
func (rs *rateState) limited() bool {
	return rs != nil && (rs.bucket != nil || rs.member != nil)
}

// meters returns the bucket and the group member, either nil if unset.
func (rs *rateState) meters() [2]limiter.Meter {
	var m [2]limiter.Meter
	if rs.bucket != nil {
		m[0] = rs.bucket
	}
	if rs.member != nil {
		m[1] = rs.member
	}
	return m
}

// allow is what the next operation may move: the least of both meters.
func (rs *rateState) allow(d limiter.Dir) int64 {
	n := int64(limiter.Max)
	for _, m := range rs.meters() {
		if m != nil {
			n = min(n, m.Allow(d))
		}
	}
	return max(n, 0)
}

// take waits until both meters let at least one byte through and returns
// how many may move. throttled is raised while it waits, so the actor can
// hold that direction's timeout (libevent's suspension rule).
func (rs *rateState) take(ctx context.Context, d limiter.Dir, throttled func(bool)) (int64, error) {
	for {
		if n := rs.allow(d); n > 0 {
			return n, nil
		}
		throttled(true)
		for _, m := range rs.meters() {
			if m != nil && m.Allow(d) <= 0 {
				if err := m.Wait(ctx, d); err != nil {
					throttled(false)
					return 0, err
				}
			}
		}
		throttled(false)
	}
}

// consume takes n bytes of direction d from every meter.
func (rs *rateState) consume(d limiter.Dir, n int) {
	if n <= 0 {
		return
	}
	for _, m := range rs.meters() {
		if m != nil {
			m.Consume(d, n)
		}
	}
}

// rateLimits is embedded in Bufferevent.
type rateLimits struct {
	rateMu sync.Mutex // serialises changes to rate
	rate   atomic.Pointer[rateState]
}

// rateState returns the bufferevent's rate limits, never nil.
func (b *Bufferevent) rateState() *rateState {
	if b.zero() {
		return &rateState{}
	}
	if rs := b.rate.Load(); rs != nil {
		return rs
	}
	return &rateState{}
}

// SetRateLimit gives the bufferevent its own token bucket configured by cfg,
// or removes it when cfg is nil (libevent's set_rate_limit). The bucket
// runs on the Base's clock ([Base.Clock]). The reader and writer loops
// then never move more than the bucket allows; a read or write held back
// waits without running its timeout. Reads and writes on
// pairs and filters obey it too (libevent ignores limits there). It fails
// with an error wrapping limiter.ErrInvalidConfig for a bad cfg and
// ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) SetRateLimit(cfg *limiter.Config) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	b.rateMu.Lock()
	defer b.rateMu.Unlock()
	rs := *b.rateState()
	switch {
	case cfg == nil:
		if rs.bucket != nil {
			rs.bucket.SetConfig(nil) // release the loops if they wait on it
		}
		rs.bucket = nil
	case rs.bucket != nil:
		if err := rs.bucket.SetConfig(cfg); err != nil {
			return err
		}
	default:
		bk, err := limiter.NewBucket(cfg, limiter.WithClock(b.base.Clock()))
		if err != nil {
			return err
		}
		rs.bucket = bk
	}
	b.rate.Store(&rs)
	b.mail.wake()
	return nil
}

// RateLimit returns the config of the bufferevent's own bucket, or nil
// when it has none (libevent's get_token_bucket_cfg). The result is a
// copy. Once the bufferevent has stopped it is nil, as Enabled is 0 and
// Callbacks is zero then: a stopped bufferevent holds no bucket.
func (b *Bufferevent) RateLimit() *limiter.Config {
	if bk := b.rateState().bucket; bk != nil {
		return bk.Config()
	}
	return nil
}

// JoinGroup makes the bufferevent a member of g, leaving any group it was
// in (libevent's add_to_rate_limit_group). It fails with an error wrapping
// ErrInvalid for a nil g, the group's error when g is closed, and ErrClosed
// after the bufferevent has stopped. Joining the group it is in already
// does nothing. A group keeps the clock it was made with
// ([limiter.WithClock]), not the Base's.
func (b *Bufferevent) JoinGroup(g *limiter.Group) error {
	if g == nil {
		return fmt.Errorf("%w: nil group", ErrInvalid)
	}
	if err := b.closedErr(); err != nil {
		return err
	}
	b.rateMu.Lock()
	defer b.rateMu.Unlock()
	rs := *b.rateState()
	if rs.group == g {
		return nil
	}
	m, err := g.Join()
	if err != nil {
		return err
	}
	if rs.member != nil {
		rs.member.Leave()
	}
	rs.group, rs.member = g, m
	b.rate.Store(&rs)
	b.mail.wake()
	return nil
}

// LeaveGroup takes the bufferevent out of its rate-limit group, if any
// (libevent's remove_from_rate_limit_group). A closed bufferevent leaves
// its group by itself.
func (b *Bufferevent) LeaveGroup() {
	if b.zero() {
		return
	}
	b.rateMu.Lock()
	defer b.rateMu.Unlock()
	rs := *b.rateState()
	if rs.member == nil {
		return
	}
	rs.member.Leave()
	rs.group, rs.member = nil, nil
	b.rate.Store(&rs)
	b.mail.wake()
}

// Group returns the rate-limit group the bufferevent belongs to, or nil.
func (b *Bufferevent) Group() *limiter.Group { return b.rateState().group }

// ReadLimit returns the read level of the bufferevent's own bucket, which
// may be negative, or limiter.Max without one (libevent's get_read_limit;
// the group is not considered).
func (b *Bufferevent) ReadLimit() int64 { return b.bucketLimit(limiter.Read) }

// WriteLimit is ReadLimit for writing (libevent's get_write_limit).
func (b *Bufferevent) WriteLimit() int64 { return b.bucketLimit(limiter.Write) }

// bucketLimit returns the level of the own bucket in d, or limiter.Max
// without one.
func (b *Bufferevent) bucketLimit(d limiter.Dir) int64 {
	if bk := b.rateState().bucket; bk != nil {
		return bk.Limit(d)
	}
	return limiter.Max
}

// MaxToRead returns the most the next read may take: the per-read maximum,
// bounded by the bucket and the group share; never negative (libevent's
// get_max_to_read).
func (b *Bufferevent) MaxToRead() int {
	if b.zero() {
		return 0
	}
	return int(min(b.maxRead.Load(), b.rateState().allow(limiter.Read)))
}

// MaxToWrite is MaxToRead for writing (libevent's get_max_to_write).
func (b *Bufferevent) MaxToWrite() int {
	if b.zero() {
		return 0
	}
	return int(min(b.maxWrite.Load(), b.rateState().allow(limiter.Write)))
}

// DecrementReadLimit takes n from the read level of the bufferevent's own
// bucket; a negative n adds tokens (libevent's decrement_read_limit). It
// fails with an error wrapping ErrNoRateLimit when there is no bucket and
// ErrClosed after the bufferevent has stopped.
func (b *Bufferevent) DecrementReadLimit(n int64) error {
	return b.decrement(limiter.Read, n)
}

// DecrementWriteLimit is DecrementReadLimit for writing, with the same
// errors.
func (b *Bufferevent) DecrementWriteLimit(n int64) error {
	return b.decrement(limiter.Write, n)
}

// decrement takes n from the own bucket's level in d; it fails with
// ErrNoRateLimit without a bucket and ErrClosed once stopped.
func (b *Bufferevent) decrement(d limiter.Dir, n int64) error {
	if err := b.closedErr(); err != nil {
		return err
	}
	bk := b.rateState().bucket
	if bk == nil {
		return fmt.Errorf("decrement %v limit: %w", d, ErrNoRateLimit)
	}
	bk.Decrement(d, n)
	b.mail.wake()
	return nil
}

// leaveRate drops the bufferevent's rate limiting when it stops, so that
// its group can be closed.
func (b *Bufferevent) leaveRate() {
	b.rateMu.Lock()
	defer b.rateMu.Unlock()
	if rs := b.rate.Load(); rs != nil && rs.member != nil {
		rs.member.Leave()
	}
	b.rate.Store(nil)
}
