package limiter

import (
	"context"
	"strconv"
)

// Dir is a direction of traffic. A caller with its own notion of direction
// (the actor's read and write flags) maps it onto these two values. An
// unknown Dir makes calls that return an error fail with an error wrapping
// [ErrInvalid]; every other call treats it as unlimited and never panics.
type Dir int

// The two directions a bucket or group limits.
const (
	// Read is the direction of bytes read from a transport.
	Read Dir = iota
	// Write is the direction of bytes written to a transport.
	Write
)

// String returns "read", "write" or "Dir(n)".
func (d Dir) String() string {
	switch d {
	case Read:
		return "read"
	case Write:
		return "write"
	}
	return "Dir(" + strconv.Itoa(int(d)) + ")"
}

func (d Dir) valid() bool { return d == Read || d == Write }

// Meter is what an I/O loop needs from a rate limit, so that a per-stream
// [Bucket] and a group [Member] can be used alike: ask how much the next
// operation may move, wait when that is nothing, and record what moved.
//
// A loop calls Allow, and if it returns 0 calls Wait and asks again; it
// moves at most what Allow returned and then calls Consume with the number
// of bytes actually moved, zero included. Implementations are safe for
// concurrent use.
type Meter interface {
	// Allow reports how many bytes the next single operation in
	// direction d may move now, never negative; 0 means wait.
	Allow(d Dir) int64
	// Wait blocks until Allow(d) would return more than 0, or ctx ends.
	Wait(ctx context.Context, d Dir) error
	// Consume records that n bytes moved in direction d.
	Consume(d Dir, n int)
}

var (
	_ Meter = (*Bucket)(nil)
	_ Meter = (*Member)(nil)
)
