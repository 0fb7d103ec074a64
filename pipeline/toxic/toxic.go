package toxic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/bevgo/bev/clock"
)

// Errors.
var (
	// ErrInvalid is the cause of every error about a bad toxic: an empty
	// name, an unknown type or stream, a negative attribute, a toxicity
	// outside [0, 1]; and of a change asked of a nil Set.
	ErrInvalid = errors.New("toxic: invalid")
	// ErrExists is returned by Set.Add for a name already in the set.
	ErrExists = errors.New("toxic: already exists")
	// ErrNotFound is returned for a name the set does not hold.
	ErrNotFound = errors.New("toxic: not found")
	// ErrClosed is the cause when a toxic (timeout, limit_data) closed a
	// stream that has no other way to say so.
	ErrClosed = errors.New("toxic: closed by toxic")
	// ErrReset is the cause when a reset_peer toxic ends a stream; it
	// wraps syscall.ECONNRESET, so errors.Is sees both.
	ErrReset = fmt.Errorf("toxic: reset_peer: %w", syscall.ECONNRESET)
)

// Stream is the direction a toxic acts on, as toxiproxy's: Upstream is
// what the client sends (what a wrapped connection writes), Downstream
// what it receives (what a wrapped connection reads).
type Stream int

// The streams.
const (
	Upstream Stream = iota
	Downstream
)

// String returns toxiproxy's name of the stream.
func (s Stream) String() string {
	switch s {
	case Upstream:
		return "upstream"
	case Downstream:
		return "downstream"
	}
	return fmt.Sprintf("Stream(%d)", int(s))
}

// ParseStream returns the stream toxiproxy names s ("upstream",
// "downstream"), or an error wrapping ErrInvalid.
func ParseStream(s string) (Stream, error) {
	switch s {
	case "upstream":
		return Upstream, nil
	case "downstream":
		return Downstream, nil
	}
	return 0, fmt.Errorf("%w: stream %q (want upstream or downstream)", ErrInvalid, s)
}

// Toxic is one named toxic: what it does (Kind), on which stream, and how
// likely it is to apply to a connection.
type Toxic struct {
	// Name identifies the toxic in its Set.
	Name string
	// Stream is the direction it acts on.
	Stream Stream
	// Toxicity is the probability, in [0, 1], that the toxic applies to a
	// given connection (drawn once per connection and stream, as
	// toxiproxy's). Zero means it never applies: use New, or set 1.
	Toxicity float64
	// Kind is the toxic's type and attributes: *Latency, *Bandwidth, ...
	Kind Kind
}

// New returns a toxic named name on stream s that applies to every
// connection. It checks nothing: Toxic.Validate, which Set.Add calls,
// reports an empty name, an unknown stream or a bad kind.
func New(name string, s Stream, k Kind) Toxic {
	return Toxic{Name: name, Stream: s, Toxicity: 1, Kind: k}
}

// Validate reports what is wrong with t, as an error wrapping ErrInvalid,
// or nil.
func (t Toxic) Validate() error {
	if t.Name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalid)
	}
	if t.Stream != Upstream && t.Stream != Downstream {
		return fmt.Errorf("%w: toxic %q: stream %d", ErrInvalid, t.Name, int(t.Stream))
	}
	if !(t.Toxicity >= 0 && t.Toxicity <= 1) {
		return fmt.Errorf("%w: toxic %q: toxicity %v is outside [0, 1]", ErrInvalid, t.Name, t.Toxicity)
	}
	if t.Kind == nil {
		return fmt.Errorf("%w: toxic %q: no kind", ErrInvalid, t.Name)
	}
	if err := t.Kind.Validate(); err != nil {
		return fmt.Errorf("toxic %q: %w", t.Name, err)
	}
	return nil
}

// Kind is a toxic's type and attributes. The kinds are the pointer types
// of this package: *Latency, *Bandwidth, *SlowClose, *Timeout,
// *ResetPeer, *Slicer and *LimitData. Their fields carry toxiproxy's JSON
// names and units.
type Kind interface {
	// Type returns toxiproxy's name of the type ("latency", ...).
	Type() string
	// Validate reports a bad attribute as an error wrapping ErrInvalid.
	Validate() error
	newLink(r *rand.Rand, c clock.Clock) link
}

// NewKind returns a zero-valued Kind of toxiproxy's type typ, ready for
// its attributes to be decoded into it, or an error wrapping ErrInvalid
// for an unknown type.
func NewKind(typ string) (Kind, error) {
	switch typ {
	case "latency":
		return &Latency{}, nil
	case "bandwidth":
		return &Bandwidth{}, nil
	case "slow_close":
		return &SlowClose{}, nil
	case "timeout":
		return &Timeout{}, nil
	case "reset_peer":
		return &ResetPeer{}, nil
	case "slicer":
		return &Slicer{}, nil
	case "limit_data":
		return &LimitData{}, nil
	}
	return nil, fmt.Errorf("%w: unknown toxic type %q", ErrInvalid, typ)
}

func nonNegative(typ, field string, v int64) error {
	if v < 0 {
		return fmt.Errorf("%w: %s: %s %d is negative", ErrInvalid, typ, field, v)
	}
	return nil
}

// Latency delays every chunk by Latency milliseconds, give or take up to
// Jitter (drawn per chunk, uniformly), keeping their order: a chunk never
// passes the one before it.
type Latency struct {
	Latency int64 `json:"latency"` // milliseconds
	Jitter  int64 `json:"jitter"`  // milliseconds
}

// Type returns "latency".
func (*Latency) Type() string { return "latency" }

// Validate rejects a negative latency or jitter with an error wrapping
// ErrInvalid.
func (k *Latency) Validate() error {
	return errors.Join(nonNegative("latency", "latency", k.Latency), nonNegative("latency", "jitter", k.Jitter))
}

// delay draws a chunk's delay: Latency plus an offset in [-Jitter,
// Jitter), at least 0 and at most the largest Duration (see millis). It
// computes in uint64 so that no attribute Validate accepts, however large,
// overflows: 2*Jitter does not fit an int64 beyond math.MaxInt64/2.
func (k *Latency) delay(r *rand.Rand) time.Duration {
	d := k.Latency
	if j := uint64(k.Jitter); k.Jitter > 0 {
		u := r.Uint64N(2 * j) // 2*j ≤ 2⁶⁴-2: no overflow in uint64
		if u >= j {
			d = satAdd(d, int64(u-j))
		} else {
			d = satAdd(d, -int64(j-u))
		}
	}
	return millis(max(d, 0))
}

// satAdd returns a+b, held at the int64 bounds instead of wrapping.
func satAdd(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// scaled returns n units as a Duration, held at the largest (or least)
// Duration, about 292 years, where n units do not fit one: an attribute
// of toxiproxy's, in milliseconds or microseconds, may be any int64, and
// a wrapped product would make a huge delay short or negative.
func scaled(n int64, unit time.Duration) time.Duration {
	switch {
	case n > int64(math.MaxInt64/unit):
		return math.MaxInt64
	case n < int64(math.MinInt64/unit):
		return math.MinInt64
	}
	return time.Duration(n) * unit
}

// millis returns ms milliseconds as a Duration, as scaled does.
func millis(ms int64) time.Duration { return scaled(ms, time.Millisecond) }

// Bandwidth caps the stream at Rate KB/s (1 KB = 1000 bytes, as in
// toxiproxy 2.5.0, whose toxic makes n bytes wait n/Rate ms), on a token
// bucket refilled every 100 ms. Zero means no cap.
type Bandwidth struct {
	Rate int64 `json:"rate"` // KB/s
}

// Type returns "bandwidth".
func (*Bandwidth) Type() string { return "bandwidth" }

// Validate rejects a negative rate with an error wrapping
// ErrInvalid.
func (k *Bandwidth) Validate() error { return nonNegative("bandwidth", "rate", k.Rate) }

// SlowClose delays the end of the stream (the EOF a reader sees, the
// half-close a writer sends) by Delay milliseconds after every byte
// before it has passed. It closes nothing itself: the end it holds back
// is the stream's own.
type SlowClose struct {
	Delay int64 `json:"delay"` // milliseconds
}

// Type returns "slow_close".
func (*SlowClose) Type() string { return "slow_close" }

// Validate rejects a negative delay with an error wrapping
// ErrInvalid.
func (k *SlowClose) Validate() error { return nonNegative("slow_close", "delay", k.Delay) }

// Timeout stops all data (it is dropped, as toxiproxy drops it) and
// closes the connection (both streams; see NewFilter) Timeout
// milliseconds after the toxic began acting on it; zero never closes.
// Removing it closes every connection whose stages it was on (those
// made while it was in the set), whether data came or not, as
// toxiproxy's does.
type Timeout struct {
	Timeout int64 `json:"timeout"` // milliseconds
}

// Type returns "timeout".
func (*Timeout) Type() string { return "timeout" }

// Validate rejects a negative timeout with an error wrapping ErrInvalid.
func (k *Timeout) Validate() error { return nonNegative("timeout", "timeout", k.Timeout) }

// ResetPeer resets the connection Timeout milliseconds after the first
// data reaches it (at once with zero); what comes meanwhile is dropped.
// On a TCP socket, under TLS too, the reset is a real RST (SO_LINGER 0);
// the local side sees an error wrapping ErrReset.
type ResetPeer struct {
	Timeout int64 `json:"timeout"` // milliseconds
}

// Type returns "reset_peer".
func (*ResetPeer) Type() string { return "reset_peer" }

// Validate rejects a negative timeout with an error wrapping ErrInvalid.
func (k *ResetPeer) Validate() error { return nonNegative("reset_peer", "timeout", k.Timeout) }

// Slicer splits each chunk into pieces of about AverageSize bytes, give or
// take SizeVariation, passing one piece every Delay microseconds. With a
// zero Delay the pieces pass at once, and a writer may send them in one
// write.
type Slicer struct {
	AverageSize   int `json:"average_size"`   // bytes
	SizeVariation int `json:"size_variation"` // bytes
	Delay         int `json:"delay"`          // microseconds
}

// Type returns "slicer".
func (*Slicer) Type() string { return "slicer" }

// Validate rejects a negative attribute, a zero average size and a
// variation not below the average size (a piece could then be empty),
// with an error wrapping ErrInvalid.
func (k *Slicer) Validate() error {
	err := errors.Join(nonNegative("slicer", "average_size", int64(k.AverageSize)),
		nonNegative("slicer", "size_variation", int64(k.SizeVariation)),
		nonNegative("slicer", "delay", int64(k.Delay)))
	if err == nil && k.AverageSize == 0 {
		err = fmt.Errorf("%w: slicer: average_size must be at least 1", ErrInvalid)
	}
	if err == nil && k.SizeVariation >= k.AverageSize {
		err = fmt.Errorf("%w: slicer: size_variation %d must be below average_size %d", ErrInvalid, k.SizeVariation, k.AverageSize)
	}
	return err
}

// LimitData passes the first Bytes bytes of the stream and then closes
// the connection (both streams; see NewFilter).
type LimitData struct {
	Bytes int64 `json:"bytes"`
}

// Type returns "limit_data".
func (*LimitData) Type() string { return "limit_data" }

// Validate rejects a negative count with an error wrapping
// ErrInvalid.
func (k *LimitData) Validate() error { return nonNegative("limit_data", "bytes", k.Bytes) }
