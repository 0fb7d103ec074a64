package pipeline

import (
	"sync/atomic"

	"github.com/bevgo/bev/actor"
)

// Tap returns a pass-through stage that shows fn every byte it moves, in
// order, before moving it on; fn runs on the filter's actor goroutine and
// p is valid only during the call (copy what you keep). A nil fn makes a
// plain pass-through. Tap moves up to limit bytes per call and returns OK
// when it moved some, NeedMore otherwise.
func Tap(fn func(p []byte)) Stage { return tap{fn} }

type tap struct{ fn func(p []byte) }

func (t tap) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	n := src.Len()
	if limit >= 0 {
		n = min(n, limit)
	}
	if n == 0 {
		return NeedMore, nil
	}
	if t.fn == nil {
		moveN(dst, src, n)
		return OK, nil
	}
	for moved := 0; moved < n; {
		k := min(n-moved, pullMax)
		t.fn(src.Pullup(k))
		moved += moveN(dst, src, k)
	}
	return OK, nil
}

// Counter is a pass-through stage that counts the bytes and the calls
// through it. Its zero value is ready to use; it is safe to read the
// counts from any goroutine while a filter runs it. A Counter must be used
// by one filter (one direction) at a time.
type Counter struct {
	bytes atomic.Int64
	calls atomic.Int64
}

// Process moves up to limit bytes unchanged and counts them; it returns OK
// when it moved some, NeedMore otherwise.
func (c *Counter) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	c.calls.Add(1)
	n := moveN(dst, src, limit)
	c.bytes.Add(int64(n))
	if n == 0 {
		return NeedMore, nil
	}
	return OK, nil
}

// Bytes returns the number of bytes moved so far.
func (c *Counter) Bytes() int64 { return c.bytes.Load() }

// Calls returns the number of times the stage was called.
func (c *Counter) Calls() int64 { return c.calls.Load() }
