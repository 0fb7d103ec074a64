package actor

import (
	"testing"
	"unsafe"
)

// Tests of actor.go: the size every connection holds for its whole life.

// Every connection holds a Bufferevent for its whole life, idle or not;
// the allocator rounds it up to its size class, so crossing 1 KiB costs
// 128 bytes more per connection (docs/benchmarks.md, idle memory). Adding
// a field may need the small ones regrouped to avoid padding.
func TestBuffereventSize(t *testing.T) {
	if n := unsafe.Sizeof(Bufferevent{}); n > 1024 {
		t.Errorf("Bufferevent is %d bytes, over the 1 KiB allocation class", n)
	}
}
