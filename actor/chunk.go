package actor

import "sync"

// notPooled is the size class of a chunk whose storage did not come from a
// pool: user memory handed over with AppendOwned, or an oversized Pullup.
const notPooled = -1

// maxChunkSize is the largest chunk newChunk gives. Writes bigger than this
// are split over several chunks.
const maxChunkSize = 64 << 10

// chunkSizes are the pooled size classes, smallest first. The last, above
// maxChunkSize, is only for reads (newReadChunk): a busy stream reads up to
// maxReadChunk per system call (see readSizer).
var chunkSizes = [...]int{512, 4 << 10, 16 << 10, 64 << 10, maxReadChunk}

// chunkPools holds one pool of *chunk per entry of chunkSizes. A chunk
// remembers its class and its storage is never replaced, so release can only
// ever put it back into the pool it came from.
var chunkPools = [len(chunkSizes)]sync.Pool{
	{New: newPooled(0)},
	{New: newPooled(1)},
	{New: newPooled(2)},
	{New: newPooled(3)},
	{New: newPooled(4)},
}

func newPooled(class int) func() any {
	return func() any {
		return &chunk{buf: make([]byte, chunkSizes[class]), class: int8(class)}
	}
}

// chunk is one link of a Buffer: valid data is buf[off:end] and, for a
// writable chunk, buf[end:] is free space. A chunk has exactly one owner at a
// time (a Buffer, or the actor between newChunk and pushChunk).
type chunk struct {
	buf      []byte
	off, end int
	// class indexes chunkPools, or is notPooled.
	class int8
	// readOnly marks memory the user handed over: its spare capacity is not
	// ours to write and it never goes into a pool.
	readOnly bool
	// inPool is set while the chunk sits in a pool, to catch a double
	// release, which would give the same storage two owners.
	inPool bool
}

// newChunk returns an empty, writable chunk of the smallest size class that
// holds sizeHint bytes; hints above maxChunkSize get a maxChunkSize chunk.
func newChunk(sizeHint int) *chunk {
	return pooledChunk(min(sizeHint, maxChunkSize))
}

// newReadChunk returns an empty, writable chunk of the smallest size class
// that holds room bytes, up to maxReadChunk: what a read reads into.
func newReadChunk(room int) *chunk { return pooledChunk(room) }

// pooledChunk returns an empty chunk of the smallest class that holds
// sizeHint bytes, or of the largest class.
func pooledChunk(sizeHint int) *chunk {
	class := len(chunkSizes) - 1
	for i, size := range chunkSizes {
		if sizeHint <= size {
			class = i
			break
		}
	}
	c := chunkPools[class].Get().(*chunk)
	if c.off != 0 || c.end != 0 {
		panic("actor: pooled chunk is not empty")
	}
	c.inPool = false
	return c
}

// ownedChunk wraps memory handed over by the user. Its capacity is clipped so
// nothing can ever be written past the caller's bytes.
func ownedChunk(p []byte) *chunk {
	return &chunk{buf: p[:len(p):len(p)], end: len(p), class: notPooled, readOnly: true}
}

// free returns the writable tail buf[end:cap]. It is nil for read-only
// chunks. The slice stays valid until the chunk is released.
func (c *chunk) free() []byte {
	if c.readOnly {
		return nil
	}
	return c.buf[c.end:len(c.buf)]
}

// commit marks the first n bytes of free() as valid data. Commit a chunk
// before it joins a Buffer: the Buffer's length does not follow later commits.
func (c *chunk) commit(n int) {
	if n < 0 || n > len(c.free()) {
		panic("actor: chunk commit out of range")
	}
	c.end += n
}

// len returns the number of valid bytes.
func (c *chunk) len() int { return c.end - c.off }

// bytes returns the valid bytes, capacity clipped so an append by the
// receiver cannot reach the free tail.
func (c *chunk) bytes() []byte { return c.buf[c.off:c.end:c.end] }

// writable reports whether Write may fill the free tail.
func (c *chunk) writable() bool { return !c.readOnly && c.class != notPooled }

// release gives the chunk up. A pooled chunk is reset and put back into its
// class's pool; any other chunk is left to the garbage collector. Only the
// last owner may call it, and nobody may touch the chunk afterwards.
func (c *chunk) release() {
	if c.class == notPooled {
		return
	}
	if c.inPool {
		panic("actor: chunk released twice")
	}
	c.off, c.end = 0, 0
	c.inPool = true
	chunkPools[c.class].Put(c)
}
