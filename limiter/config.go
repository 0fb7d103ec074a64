package limiter

import (
	"fmt"
	"math"
	"time"
)

// Max is the largest rate, burst or bucket level, libevent's
// EV_RATE_LIMIT_MAX. It is also what a limit reports when there is no
// limit: [Bucket.Limit] without a config, [Bucket.Allow] and
// [Member.Allow] after the member has left its group, and every query
// about an unknown [Dir].
const Max = math.MaxInt64

// DefaultTick is the tick a [Config] uses when its Tick is zero, libevent's
// NULL tick. [NewConfig] takes the tick explicitly and rejects zero, as
// libevent rejects a zero timeval, so pass DefaultTick to get the default.
const DefaultTick = time.Second

// maxTickSeconds is the largest whole number of seconds a tick may have:
// libevent keeps the tick in milliseconds in an int.
const maxTickSeconds = math.MaxInt32 / 1000

// Config is a token-bucket configuration, libevent's ev_token_bucket_cfg:
// a rate and a burst for each direction, and the tick the rates refer to.
//
// Buckets and groups copy the Config they are given, so changing a Config
// after passing it has no effect until it is passed again. The zero value
// is not valid: rates must be at least 1.
type Config struct {
	// ReadRate is the number of bytes that may be read per tick. It must
	// be at least 1 and at most ReadBurst.
	ReadRate int64
	// ReadBurst is the most bytes the read bucket can hold, so the most
	// that can be read at once after an idle spell.
	ReadBurst int64
	// WriteRate is the number of bytes that may be written per tick. It
	// must be at least 1 and at most WriteBurst.
	WriteRate int64
	// WriteBurst is the most bytes the write bucket can hold.
	WriteBurst int64
	// Tick is the refill period. Zero means DefaultTick (one second).
	// Parts below a millisecond are ignored, as libevent keeps the tick
	// in milliseconds, so it must be at least one millisecond and at most
	// math.MaxInt32/1000 whole seconds.
	Tick time.Duration
}

// NewConfig returns a validated Config, libevent's ev_token_bucket_cfg_new
// with an explicit tick. A tick of zero is an error, like libevent's zero
// timeval; pass [DefaultTick] for the default. Sub-millisecond parts of
// tick are dropped, so 1.5ms becomes 1ms. Errors wrap [ErrInvalidConfig].
func NewConfig(readRate, readBurst, writeRate, writeBurst int64, tick time.Duration) (*Config, error) {
	if tick < time.Millisecond {
		// Checked before truncation: a truncated 999µs would read as the
		// zero tick, which a Config takes to mean DefaultTick.
		return nil, fmt.Errorf("%w: tick %v is under one millisecond", ErrInvalidConfig, tick)
	}
	c := &Config{
		ReadRate:   readRate,
		ReadBurst:  readBurst,
		WriteRate:  writeRate,
		WriteBurst: writeBurst,
		Tick:       tick.Truncate(time.Millisecond),
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewConfigSeconds is [NewConfig] with the tick given as a C timeval,
// whole seconds and microseconds, so that every value libevent can be
// handed, including ones too large for a time.Duration, is checked the
// way libevent checks it. tickSec must be in [0, math.MaxInt32/1000],
// tickUsec in [0, 999999], and together at least one millisecond.
// Errors wrap [ErrInvalidConfig].
func NewConfigSeconds(readRate, readBurst, writeRate, writeBurst, tickSec, tickUsec int64) (*Config, error) {
	if tickSec < 0 || tickSec > maxTickSeconds {
		return nil, fmt.Errorf("%w: tick of %d seconds is outside [0, %d]", ErrInvalidConfig, tickSec, maxTickSeconds)
	}
	if tickUsec < 0 || tickUsec >= 1e6 {
		return nil, fmt.Errorf("%w: tick microseconds %d outside [0, 999999]", ErrInvalidConfig, tickUsec)
	}
	ms := tickSec*1000 + tickUsec/1000
	if ms < 1 {
		return nil, fmt.Errorf("%w: tick of %ds %dus is under one millisecond", ErrInvalidConfig, tickSec, tickUsec)
	}
	return NewConfig(readRate, readBurst, writeRate, writeBurst, time.Duration(ms)*time.Millisecond)
}

// Validate reports whether c is usable, with an error wrapping
// [ErrInvalidConfig] that says what is wrong if it is not. It applies
// libevent's checks: every rate at least 1 and at most its burst, and a
// tick (zero meaning [DefaultTick]) of at least one millisecond, not
// counting sub-millisecond parts, and at most math.MaxInt32/1000 whole
// seconds. No int64 can exceed [Max], so libevent's upper bound on rates
// and bursts holds by type.
func (c *Config) Validate() error {
	if c == nil {
		return fmt.Errorf("%w: nil config", ErrInvalidConfig)
	}
	if c.Tick < 0 {
		return fmt.Errorf("%w: negative tick %v", ErrInvalidConfig, c.Tick)
	}
	if c.Tick != 0 && c.Tick < time.Millisecond {
		return fmt.Errorf("%w: tick %v is under one millisecond", ErrInvalidConfig, c.Tick)
	}
	if s := int64(c.Tick / time.Second); s > maxTickSeconds {
		return fmt.Errorf("%w: tick of %d seconds is over %d", ErrInvalidConfig, s, maxTickSeconds)
	}
	if err := checkRate("read", c.ReadRate, c.ReadBurst); err != nil {
		return err
	}
	return checkRate("write", c.WriteRate, c.WriteBurst)
}

func checkRate(dir string, r, burst int64) error {
	if r < 1 {
		return fmt.Errorf("%w: %s rate %d is under 1", ErrInvalidConfig, dir, r)
	}
	if r > burst {
		return fmt.Errorf("%w: %s rate %d is above its burst %d", ErrInvalidConfig, dir, r, burst)
	}
	return nil
}

// tickNanos is the effective tick in nanoseconds: the default for zero,
// whole milliseconds otherwise. c must be valid.
func (c *Config) tickNanos() int64 {
	if c.Tick == 0 {
		return int64(DefaultTick)
	}
	return int64(c.Tick.Truncate(time.Millisecond))
}

// rate returns the rate and burst of direction d. d must be valid.
func (c *Config) rate(d Dir) (r, burst int64) {
	if d == Read {
		return c.ReadRate, c.ReadBurst
	}
	return c.WriteRate, c.WriteBurst
}
