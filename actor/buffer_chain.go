package actor

// chain returns the chunks, front first. It aliases b.chunks.
func (b *Buffer) chain() []*chunk { return b.chunks[b.head:] }

// last returns the last chunk, or nil when the buffer is empty.
func (b *Buffer) last() *chunk {
	if len(b.chunks) == b.head {
		return nil
	}
	return b.chunks[len(b.chunks)-1]
}

// reserve makes room to append extra chunk pointers. It slides the chain
// back to index 0 when that frees enough room and costs no more than the
// slots already popped (keeping pushes amortised O(1)); otherwise it moves
// the chain to a larger array.
func (b *Buffer) reserve(extra int) {
	if len(b.chunks)+extra <= cap(b.chunks) {
		return
	}
	live := len(b.chunks) - b.head
	if live+extra <= cap(b.chunks) && b.head >= live {
		copy(b.chunks, b.chunks[b.head:])
		clear(b.chunks[live:])
		b.chunks = b.chunks[:live]
		b.head = 0
		return
	}
	grown := make([]*chunk, live, max(2*(live+extra), 8))
	copy(grown, b.chunks[b.head:])
	b.chunks = grown
	b.head = 0
}

// push appends a non-empty chunk.
func (b *Buffer) push(c *chunk) {
	b.reserve(1)
	b.chunks = append(b.chunks, c)
	b.n += c.len()
}

// prependAll moves every chunk of src to the front of b, src != b,
// ignoring freezing: the actor puts back what a transport did not take.
func (b *Buffer) prependAll(src *Buffer) {
	src.moveAll(b)
	b.moveAll(src) // b is empty now: a swap
}

// pushFront puts a non-empty chunk in front of the chain.
func (b *Buffer) pushFront(c *chunk) {
	if b.head > 0 {
		b.head--
		b.chunks[b.head] = c
	} else {
		b.reserve(1)
		b.chunks = append(b.chunks, nil)
		copy(b.chunks[1:], b.chunks)
		b.chunks[0] = c
	}
	b.n += c.len()
}

// popFront unlinks and returns the first chunk; the caller owns it.
func (b *Buffer) popFront() *chunk {
	c := b.chunks[b.head]
	b.chunks[b.head] = nil
	b.head++
	if b.head == len(b.chunks) {
		b.chunks = b.chunks[:0]
		b.head = 0
	}
	b.n -= c.len()
	return c
}

// dropAll releases every chunk, keeping the chain array for reuse.
func (b *Buffer) dropAll() {
	for _, c := range b.chain() {
		c.release()
	}
	clear(b.chunks)
	b.chunks = b.chunks[:0]
	b.head = 0
	b.n = 0
}

// drain removes the first min(n, Len()) bytes, releasing each chunk as soon
// as it is empty. It ignores freezing; the actor calls it after the writer
// loop has sent bytes.
func (b *Buffer) drain(n int) {
	for n > 0 && b.n > 0 {
		c := b.chunks[b.head]
		if c.len() > n {
			c.off += n
			b.n -= n
			return
		}
		n -= c.len()
		b.popFront().release()
	}
}

// pushChunk appends c, taking ownership of it; an empty c is released
// instead. It ignores freezing. Commit bytes to c before pushing it.
func (b *Buffer) pushChunk(c *chunk) {
	if c.len() == 0 {
		c.release()
		return
	}
	b.push(c)
}

// slices appends to dst read-only views of the first min(limit, Len())
// bytes, one per chunk, without removing them, and returns the extended
// slice. The views stay valid until those bytes are drained. It allocates
// only when dst runs out of capacity.
func (b *Buffer) slices(dst [][]byte, limit int) [][]byte {
	for _, c := range b.chain() {
		if limit <= 0 {
			break
		}
		p := c.bytes()
		if len(p) > limit {
			p = p[:limit:limit]
		}
		dst = append(dst, p)
		limit -= len(p)
	}
	return dst
}

// popChunk removes the first chunk and returns its bytes, or nil when the
// buffer is empty. Ownership of the bytes passes to the caller; the chunk
// does not go back to a pool. It ignores freezing.
func (b *Buffer) popChunk() []byte {
	if b.n == 0 {
		return nil
	}
	return b.popFront().bytes()
}

// setFrozen sets whether the front and the end of the buffer are frozen.
func (b *Buffer) setFrozen(front, end bool) {
	b.frozenFront = front
	b.frozenEnd = end
}

// release drops every byte and returns pooled chunks, ignoring freezing.
// The bufferevent calls it when it is freed.
func (b *Buffer) release() {
	b.dropAll()
	b.chunks = nil
}
