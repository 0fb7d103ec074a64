package limiter

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bevgo/bev/clock"
)

// A Bucket is the rate limit of one stream, libevent's per-bufferevent
// token bucket: a signed level per direction that refills by the rate at
// each tick, up to the burst.
//
// Ticks line up on absolute multiples of the tick length. A new bucket
// starts at the rate, not the burst. Refill is lazy: every call first adds
// the rate once per tick boundary crossed since the last call. One
// operation may take the level below zero (deficit spending); the bucket
// then stays empty for as many ticks as the refill needs to bring it above
// zero.
//
// A Bucket is safe for concurrent use: an actor, its reader loop and its
// writer loop may all call it, and Stats may be read from any goroutine.
// A Bucket without a config (made with a nil *Config or after
// SetConfig(nil)) does not limit: its limits report [Max]. A Bucket starts
// no goroutine and needs no Close.
type Bucket struct {
	clock clock.Clock

	mu sync.Mutex // guards following
	// cfg is a private copy; nil means no limit.
	cfg    *Config
	tickNs int64
	level  [2]int64
	last   [2]int64 // tick index of the last refill
	// changed, if not nil, is closed and cleared when the config changes
	// or tokens are added, so that waiters re-evaluate at once.
	changed chan struct{}
	waiters int
}

// BucketStats is a snapshot of a [Bucket].
type BucketStats struct {
	// Limited reports whether the bucket has a config.
	Limited bool
	// ReadLimit and WriteLimit are the levels after a lazy refill, as
	// [Bucket.Limit] reports them; [Max] without a config.
	ReadLimit, WriteLimit int64
	// Waiters is the number of goroutines blocked in [Bucket.Wait].
	Waiters int
}

// NewBucket returns a bucket limited by a copy of cfg, with each direction
// starting at its rate, on the system's clock unless an option
// ([WithClock]) gives another. A nil cfg gives a bucket that does not
// limit until [Bucket.SetConfig] gives it one. An invalid cfg gives an
// error wrapping [ErrInvalidConfig].
func NewBucket(cfg *Config, opts ...Option) (*Bucket, error) {
	b := &Bucket{clock: applyOptions(opts).clock}
	if err := b.SetConfig(cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// SetConfig replaces the bucket's config with a copy of cfg,
// libevent's bufferevent_set_rate_limit. The first config sets each level
// to its rate. A different config first refills the bucket under the old
// one, then clips each level down to the new burst and counts later ticks
// in the new tick length; a config equal to the current one changes
// nothing. A nil cfg removes the limit. Goroutines blocked in
// [Bucket.Wait] re-evaluate at once. An invalid cfg gives an error
// wrapping [ErrInvalidConfig] and changes nothing.
func (b *Bucket) SetConfig(cfg *Config) error {
	if cfg != nil {
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	b.mu.Lock()
	switch {
	case cfg == nil:
		b.cfg = nil
	case b.cfg == nil:
		c := *cfg
		b.cfg = &c
		b.tickNs = c.tickNanos()
		now := tickIndex(b.now(), b.tickNs)
		for d := range Dir(2) {
			b.level[d], _ = c.rate(d)
			b.last[d] = now
		}
	case *cfg == *b.cfg:
		b.mu.Unlock()
		return nil
	default:
		now := b.now()
		for d := range Dir(2) {
			b.refillLocked(d, now)
		}
		c := *cfg
		b.cfg = &c
		b.tickNs = c.tickNanos()
		idx := tickIndex(now, b.tickNs)
		for d := range Dir(2) {
			_, burst := c.rate(d)
			b.level[d] = min(b.level[d], burst)
			b.last[d] = idx
		}
	}
	changed := b.takeChangedLocked()
	b.mu.Unlock()
	if changed != nil {
		close(changed)
	}
	return nil
}

// Config returns a copy of the bucket's config, or nil if it has none.
func (b *Bucket) Config() *Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg == nil {
		return nil
	}
	c := *b.cfg
	return &c
}

// Limit returns the level of direction d after a lazy refill, libevent's
// bufferevent_get_read_limit and _write_limit. It can be negative after
// deficit spending. It is [Max] if the bucket has no config or d is
// unknown.
func (b *Bucket) Limit(d Dir) int64 {
	if !d.valid() {
		return Max
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg == nil {
		return Max
	}
	b.refillLocked(d, b.now())
	return b.level[d]
}

// Allow reports how many bytes the next single operation in direction d
// may move now: the level after a lazy refill, floored at 0, which means
// wait. It is [Max] if the bucket has no config or d is unknown. The
// caller applies its own cap on one operation (libevent's max single read
// or write) on top.
func (b *Bucket) Allow(d Dir) int64 {
	return max(b.Limit(d), 0)
}

// Wait blocks until [Bucket.Allow] for d would return more than 0, or ctx
// ends. It returns nil at once if Allow is already positive. It wakes at
// the tick boundary where the refill lifts the level above zero, or at
// once when [Bucket.SetConfig] or a negative [Bucket.Decrement] changes
// the answer. If ctx ends first it returns an error wrapping ctx.Err()
// (so errors.Is with context.Canceled or context.DeadlineExceeded works)
// and the context's cause. An unknown d gives an error wrapping
// [ErrInvalid].
func (b *Bucket) Wait(ctx context.Context, d Dir) error {
	if !d.valid() {
		return fmt.Errorf("%w: wait on direction %v", ErrInvalid, d)
	}
	var sleep alarm
	defer sleep.stop()
	for {
		b.mu.Lock()
		if b.cfg == nil {
			b.mu.Unlock()
			return nil
		}
		now := b.now()
		b.refillLocked(d, now)
		level := b.level[d]
		if level > 0 {
			b.mu.Unlock()
			return nil
		}
		r, _ := b.cfg.rate(d)
		delay := untilTick(now, b.last[d], ticksToReach(level, 1, r), b.tickNs)
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.waiters++
		b.mu.Unlock()

		var err error
		select {
		case <-ctx.Done():
			err = waitError(ctx)
		case <-changed:
		case <-sleep.at(b.clock, now.Add(delay)):
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// Consume records that n bytes moved in direction d: the level drops by n
// after a lazy refill, possibly below zero. It does nothing if n is not
// positive, the bucket has no config or d is unknown.
func (b *Bucket) Consume(d Dir, n int) {
	if n > 0 {
		b.decrement(d, int64(n))
	}
}

// Decrement takes n tokens from direction d by hand, libevent's
// bufferevent_decrement_read_limit and _write_limit. The level may go
// below zero; a negative n adds tokens, beyond the burst if it comes to
// that, until the next refill clips the level back to the burst. Adding
// tokens wakes goroutines blocked in [Bucket.Wait]. Decrement does nothing
// if the bucket has no config (where libevent asserts) or d is unknown.
func (b *Bucket) Decrement(d Dir, n int64) {
	b.decrement(d, n)
}

func (b *Bucket) decrement(d Dir, n int64) {
	if !d.valid() || n == 0 {
		return
	}
	b.mu.Lock()
	if b.cfg == nil {
		b.mu.Unlock()
		return
	}
	b.refillLocked(d, b.now())
	b.level[d] = subSat(b.level[d], n)
	var changed chan struct{}
	if n < 0 {
		changed = b.takeChangedLocked()
	}
	b.mu.Unlock()
	if changed != nil {
		close(changed)
	}
}

// Stats returns a snapshot of the bucket's levels, after a lazy refill.
func (b *Bucket) Stats() BucketStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BucketStats{ReadLimit: Max, WriteLimit: Max, Waiters: b.waiters}
	if b.cfg == nil {
		return s
	}
	now := b.now()
	b.refillLocked(Read, now)
	b.refillLocked(Write, now)
	s.Limited = true
	s.ReadLimit, s.WriteLimit = b.level[Read], b.level[Write]
	return s
}

// now reads the bucket's clock (see timeOn).
func (b *Bucket) now() time.Time { return timeOn(b.clock) }

// refillLocked adds the rate of d once for every tick boundary crossed
// since the last refill. A clock that went backwards adds nothing.
func (b *Bucket) refillLocked(d Dir, now time.Time) {
	idx := tickIndex(now, b.tickNs)
	if idx <= b.last[d] {
		return
	}
	r, burst := b.cfg.rate(d)
	b.level[d] = refill(b.level[d], r, burst, idx-b.last[d])
	b.last[d] = idx
}

// takeChangedLocked returns the channel to close to wake waiters, if any,
// and clears it; the caller closes it after unlocking.
func (b *Bucket) takeChangedLocked() chan struct{} {
	c := b.changed
	b.changed = nil
	return c
}
