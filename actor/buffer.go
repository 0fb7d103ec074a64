package actor

import (
	"bytes"
	"fmt"
	"io"
	"net"
)

// readChunkSize is the chunk ReadFrom asks for when the last chunk is full;
// it matches libevent's default per-read cap of 16384 bytes.
const readChunkSize = 16 << 10

// minReadSpace is the least free tail ReadFrom reads into before it takes a
// fresh chunk, so a nearly full chunk does not turn into many tiny reads.
const minReadSpace = 512

// maxEmptyReads is how many (0, nil) reads in a row ReadFrom, and a
// bufferevent's reader loop, accept before they give up with
// io.ErrNoProgress.
const maxEmptyReads = 100

// Buffer is a byte queue stored as a chain of chunks, the counterpart of
// libevent's evbuffer. Bytes are appended at the end and removed from the
// front; moving a whole Buffer into another moves chunk pointers, not bytes.
//
// A Buffer is not safe for concurrent use. It belongs to exactly one
// goroutine at a time (a bufferevent's actor goroutine, or the user's code
// running inside it); sharing one between goroutines without external
// synchronisation corrupts it.
//
// The zero value is an empty Buffer ready to use. A Buffer must not be copied
// after first use.
//
// Storage comes from size-classed pools (512 B, 4 KiB, 16 KiB and 64 KiB
// chunks, and 256 KiB for a bufferevent's largest reads). A chunk goes back to its pool as soon as it has been drained, so an
// idle Buffer holds no chunk memory.
//
// # Freezing
//
// A bufferevent may freeze either end of a Buffer it owns: the front of its
// output, which the writer loop is sending, and the end of its input, where
// the reader loop appends. While the front is frozen, the methods that remove
// bytes from the front (Read, Drain, ReadLine, WriteTo, Reset, and MoveFrom and MoveFromN
// when the Buffer is the source) return an error wrapping [ErrFrozen] and
// change nothing. While the end is frozen, the methods that add bytes (Write,
// WriteString, AppendOwned, ReadFrom, and MoveFrom and MoveFromN when the Buffer is the
// destination) do the same. Len, Peek, Pullup and Index are always allowed.
type Buffer struct {
	// chunks[head:] is the chain, front first. Every chunk in it holds at
	// least one byte, and chunks[:head] are nil.
	chunks []*chunk
	head   int
	// n is the sum of the chunks' lengths.
	n int

	frozenFront bool
	frozenEnd   bool
}

// frozenError reports an operation refused because the side of the buffer
// it touches is frozen.
func frozenError(op, side string) error {
	return fmt.Errorf("%w: Buffer.%s (%s)", ErrFrozen, op, side)
}

// Len returns the number of bytes in the buffer.
func (b *Buffer) Len() int { return b.n }

// Write appends a copy of p to the buffer. It implements [io.Writer]: it
// returns len(p), nil, or 0 and an error wrapping [ErrFrozen] when the end is
// frozen. Write never keeps p. Small writes fill the free space of the last
// chunk before a new chunk is taken.
func (b *Buffer) Write(p []byte) (int, error) {
	if b.frozenEnd {
		return 0, frozenError("Write", "end")
	}
	appendCopy(b, p)
	return len(p), nil
}

// WriteString is like [Buffer.Write] but appends the bytes of s: it
// returns len(s), nil, or 0 and an error wrapping ErrFrozen when the end
// is frozen.
func (b *Buffer) WriteString(s string) (int, error) {
	if b.frozenEnd {
		return 0, frozenError("WriteString", "end")
	}
	appendCopy(b, s)
	return len(s), nil
}

// appendCopy copies p to the end of b, first into the free tail of the last
// chunk, then into new chunks sized for what is left.
func appendCopy[T []byte | string](b *Buffer, p T) {
	if c := b.last(); c != nil && c.writable() {
		n := copy(c.free(), p)
		c.end += n
		b.n += n
		p = p[n:]
	}
	for len(p) > 0 {
		c := newChunk(len(p))
		c.end = copy(c.free(), p)
		p = p[c.end:]
		b.push(c)
	}
}

// AppendOwned appends p without copying it, like libevent's
// evbuffer_add_reference without a cleanup callback. The buffer takes
// ownership of p: the caller must not modify p afterwards. Until its bytes
// are drained, p's memory may be returned by Pullup, moved to another Buffer
// by MoveFrom, or handed to a writer. The buffer never writes into p nor into
// its spare capacity, and never pools it. A nil or empty p is a no-op.
// AppendOwned returns an error wrapping [ErrFrozen] when the end is frozen.
func (b *Buffer) AppendOwned(p []byte) error {
	if b.frozenEnd {
		return frozenError("AppendOwned", "end")
	}
	if len(p) == 0 {
		return nil
	}
	b.push(ownedChunk(p))
	return nil
}

// Read removes up to len(p) bytes from the front of the buffer and copies
// them into p. It implements [io.Reader]: it returns 0, nil when len(p) is 0,
// and 0, [io.EOF] (unwrapped) when the buffer is empty. It returns 0 and an
// error wrapping [ErrFrozen] when the front is frozen. Read never keeps p.
func (b *Buffer) Read(p []byte) (int, error) {
	if b.frozenFront {
		return 0, frozenError("Read", "front")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	n := b.Peek(p)
	b.drain(n)
	return n, nil
}

// Drain removes the first min(n, Len()) bytes. It returns an error wrapping
// [ErrInvalid] when n is negative and one wrapping [ErrFrozen] when the front
// is frozen; in both cases nothing is removed.
func (b *Buffer) Drain(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: Buffer.Drain(%d)", ErrInvalid, n)
	}
	if b.frozenFront {
		return frozenError("Drain", "front")
	}
	b.drain(n)
	return nil
}

// Peek copies up to len(p) bytes from the front of the buffer into p without
// removing them, like evbuffer_copyout, and returns the number copied. Peek
// never keeps p.
func (b *Buffer) Peek(p []byte) int {
	n := 0
	for _, c := range b.chain() {
		if n == len(p) {
			break
		}
		n += copy(p[n:], c.bytes())
	}
	return n
}

// Pullup makes the first n bytes of the buffer contiguous and returns them,
// like evbuffer_pullup. A negative n, or one larger than Len(), means the
// whole buffer; it returns nil when the buffer is empty or n is 0.
//
// The result aliases the buffer's storage. It is valid only until the next
// call that changes the buffer, and the caller must not modify it. When the
// bytes already sit in one chunk no copy is made; otherwise they are copied
// into a new chunk that replaces the chunks they came from. Bytes are never
// moved inside existing storage, and while the front is frozen the replaced
// chunks are left to the garbage collector instead of the pools, so memory a
// writer may still be sending from is never overwritten.
func (b *Buffer) Pullup(n int) []byte {
	if n < 0 || n > b.n {
		n = b.n
	}
	if n == 0 {
		return nil
	}
	if first := b.chunks[b.head]; first.len() >= n {
		return first.buf[first.off : first.off+n : first.off+n]
	}
	var c *chunk
	if n <= maxChunkSize {
		c = newChunk(n)
	} else {
		c = &chunk{buf: make([]byte, n), class: notPooled}
	}
	for c.end < n {
		f := b.chunks[b.head]
		k := copy(c.buf[c.end:n], f.bytes())
		c.end += k
		if k < f.len() {
			f.off += k
			b.n -= k
			break
		}
		b.popFront()
		// With the front frozen the writer loop may be sending from f right
		// now. Leave f to the garbage collector instead of the pool, so no
		// other Buffer can write into that memory under the writer.
		if !b.frozenFront {
			f.release()
		}
	}
	b.pushFront(c)
	return c.buf[:n:n]
}

// Index returns the offset of the first occurrence of sep in the buffer, or
// -1 when there is none, like evbuffer_search. Matches may span chunks. An
// empty sep matches at 0. Index never keeps sep.
func (b *Buffer) Index(sep []byte) int {
	if len(sep) == 0 {
		return 0
	}
	if len(sep) > b.n {
		return -1
	}
	chain := b.chain()
	base := 0
	for i, c := range chain {
		data := c.bytes()
		if j := bytes.Index(data, sep); j >= 0 {
			return base + j
		}
		// A match that starts in the last len(sep)-1 bytes runs into the
		// following chunks; any match inside data would start earlier.
		for s := max(0, len(data)-len(sep)+1); s < len(data); s++ {
			j := bytes.IndexByte(data[s:], sep[0])
			if j < 0 {
				break
			}
			s += j
			if hasPrefixAt(chain[i:], s, sep) {
				return base + s
			}
		}
		base += len(data)
	}
	return -1
}

// hasPrefixAt reports whether the bytes of chain starting at offset off of
// its first chunk begin with sep.
func hasPrefixAt(chain []*chunk, off int, sep []byte) bool {
	for _, c := range chain {
		data := c.bytes()[off:]
		off = 0
		k := min(len(data), len(sep))
		if !bytes.Equal(data[:k], sep[:k]) {
			return false
		}
		sep = sep[k:]
		if len(sep) == 0 {
			return true
		}
	}
	return false
}

// MoveFrom moves all bytes of src to the end of b without copying them, like
// evbuffer_add_buffer: chunk pointers move, so the cost depends on the
// number of chunks, not bytes. src is left empty and the order of bytes is
// kept. It returns an error wrapping [ErrInvalid] when src is nil or is b,
// and one wrapping [ErrFrozen] when b's end or src's front is frozen; in
// those cases neither buffer changes.
func (b *Buffer) MoveFrom(src *Buffer) error {
	if src == nil || src == b {
		return fmt.Errorf("%w: Buffer.MoveFrom: nil or same source", ErrInvalid)
	}
	if b.frozenEnd {
		return frozenError("MoveFrom", "destination end")
	}
	if src.frozenFront {
		return frozenError("MoveFrom", "source front")
	}
	b.moveAll(src)
	return nil
}

// moveAll moves every chunk of src to the end of b, src != b; it ignores
// freezing. Into an empty b it costs the same whatever the number of
// chunks.
func (b *Buffer) moveAll(src *Buffer) {
	if src.n == 0 {
		return
	}
	if b.n == 0 {
		// An empty Buffer has no chunks and head 0, so swapping the chain
		// arrays is a complete move and keeps both arrays in use.
		b.chunks, src.chunks = src.chunks, b.chunks
		b.head, src.head = src.head, 0
	} else {
		moved := src.chain()
		b.reserve(len(moved))
		b.chunks = append(b.chunks, moved...)
		clear(src.chunks)
		src.chunks = src.chunks[:0]
		src.head = 0
	}
	b.n += src.n
	src.n = 0
}

// MoveFromN moves the first min(n, src.Len()) bytes of src to the end of b
// and returns how many, like evbuffer_remove_buffer: whole chunks move
// without copying, and only the part of a chunk that the limit splits is
// copied. It returns 0 and an error wrapping [ErrInvalid] when src is nil
// or is b or n is negative, and one wrapping [ErrFrozen] when b's end or
// src's front is frozen; in those cases neither buffer changes.
func (b *Buffer) MoveFromN(src *Buffer, n int) (int, error) {
	if src == nil || src == b || n < 0 {
		return 0, fmt.Errorf("%w: Buffer.MoveFromN(%d): nil or same source or negative count", ErrInvalid, n)
	}
	if b.frozenEnd {
		return 0, frozenError("MoveFromN", "destination end")
	}
	if src.frozenFront {
		return 0, frozenError("MoveFromN", "source front")
	}
	if n >= src.n {
		moved := src.n
		b.MoveFrom(src)
		return moved, nil
	}
	return b.moveN(src, n), nil
}

// moveN moves the first n bytes of src, n < src.Len(), ignoring freezing:
// whole chunks move, and a split chunk's head is copied.
func (b *Buffer) moveN(src *Buffer, n int) int {
	moved := 0
	for moved < n {
		c := src.chunks[src.head]
		if k := c.len(); moved+k <= n {
			b.push(src.popFront())
			moved += k
			continue
		}
		k := n - moved
		appendCopy(b, c.bytes()[:k])
		c.off += k
		src.n -= k
		moved += k
	}
	return moved
}

// WriteTo drains the buffer into w. It implements [io.WriterTo]. All
// buffered chunks go to w as one [net.Buffers], so a *net.TCPConn sends them
// with a single writev. It returns the number of bytes written, which are
// the ones removed; w's error is returned unchanged, and [io.ErrShortWrite]
// when w wrote less without an error. It returns 0 and an error wrapping
// [ErrFrozen] when the front is frozen, and one wrapping [ErrInvalid] for
// a nil w.
func (b *Buffer) WriteTo(w io.Writer) (int64, error) {
	if w == nil {
		return 0, fmt.Errorf("%w: Buffer.WriteTo: nil writer", ErrInvalid)
	}
	if b.frozenFront {
		return 0, frozenError("WriteTo", "front")
	}
	if b.n == 0 {
		return 0, nil
	}
	want := b.n
	bufs := net.Buffers(b.slices(make([][]byte, 0, len(b.chain())), want))
	n, err := bufs.WriteTo(w)
	b.drain(int(n))
	if err == nil && int(n) < want {
		err = io.ErrShortWrite
	}
	return n, err
}

// ReadFrom appends everything r yields until [io.EOF], reading straight into
// pooled chunks. It implements [io.ReaderFrom]: it returns the number of
// bytes added, and io.EOF is not an error. r's other errors are returned
// unchanged, after the bytes read so far have been kept. It fails with an
// error wrapping [io.ErrNoProgress] after many empty reads in a row, one
// wrapping [ErrInvalid] when r reports an impossible count or is nil, and
// one wrapping [ErrFrozen], having read nothing, when the end is frozen.
func (b *Buffer) ReadFrom(r io.Reader) (int64, error) {
	if r == nil {
		return 0, fmt.Errorf("%w: Buffer.ReadFrom: nil reader", ErrInvalid)
	}
	if b.frozenEnd {
		return 0, frozenError("ReadFrom", "end")
	}
	var total int64
	empty := 0
	for {
		c := b.last()
		fresh := c == nil || !c.writable() || len(c.free()) < minReadSpace
		if fresh {
			c = newChunk(readChunkSize)
		}
		free := c.free()
		n, err := r.Read(free)
		if n < 0 || n > len(free) {
			if fresh {
				c.release()
			}
			return total, fmt.Errorf("%w: Buffer.ReadFrom: reader returned %d for a %d-byte read", ErrInvalid, n, len(free))
		}
		c.end += n
		total += int64(n)
		switch {
		case !fresh:
			b.n += n
		case n > 0:
			b.push(c)
		default:
			c.release()
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			return total, fmt.Errorf("actor: Buffer.ReadFrom: %w", io.ErrNoProgress)
		}
	}
}

// Reset removes all bytes and returns their chunks to the pools. It returns
// an error wrapping [ErrFrozen], and removes nothing, when the front is
// frozen.
func (b *Buffer) Reset() error {
	if b.frozenFront {
		return frozenError("Reset", "front")
	}
	b.dropAll()
	return nil
}
