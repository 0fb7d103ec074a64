package actor

import (
	"bytes"
	"fmt"
)

// EOLStyle selects what ends a line for [Buffer.ReadLine]. The values match
// libevent's enum evbuffer_eol_style, and the zero value is EOLAny.
type EOLStyle int

const (
	// EOLAny ends a line at any run of CR and LF bytes, in any order and
	// number; the whole run is the terminator. It is fast but ambiguous:
	// "a\n\nb" yields one line "a", not "a" and an empty line.
	//
	// A run that reaches the end of the buffer counts as complete, as in
	// libevent. So "a\r" yields "a" at once, even if the peer was sending
	// "a\r\n"; the LF that arrives later then ends an empty line. Use EOLCRLF
	// for CR LF protocols.
	EOLAny EOLStyle = iota

	// EOLCRLF ends a line at LF, optionally preceded by CR; the CR is
	// stripped with the LF. A CR not followed by LF is part of the line, and
	// a CR at the very end of the buffer waits for more input.
	EOLCRLF

	// EOLCRLFStrict ends a line at exactly CR LF.
	EOLCRLFStrict

	// EOLLF ends a line at LF.
	EOLLF

	// EOLNUL ends a line at a NUL byte.
	EOLNUL
)

// String returns the constant's name, or EOLStyle(n) for an unknown value.
func (s EOLStyle) String() string {
	switch s {
	case EOLAny:
		return "EOLAny"
	case EOLCRLF:
		return "EOLCRLF"
	case EOLCRLFStrict:
		return "EOLCRLFStrict"
	case EOLLF:
		return "EOLLF"
	case EOLNUL:
		return "EOLNUL"
	}
	return fmt.Sprintf("EOLStyle(%d)", int(s))
}

// errNoLine is built once so a reader polling for a line does not allocate
// each time the line is still incomplete.
var errNoLine = fmt.Errorf("%w: Buffer.ReadLine", ErrNoLine)

var crlf = []byte("\r\n")

// ReadLine removes the first line and its terminator from the buffer and
// returns the line without the terminator, like evbuffer_readln. The line is
// a new slice that the caller owns; an empty line is a non-nil empty slice.
//
// When the buffer holds no complete line it returns nil and an error
// wrapping [ErrNoLine] and changes nothing. It returns an error wrapping
// [ErrInvalid] for an unknown style, and one wrapping [ErrFrozen] when the
// front is frozen. See [EOLAny] for how a CR at the end of the buffer is
// treated.
func (b *Buffer) ReadLine(style EOLStyle) (line []byte, err error) {
	if style < EOLAny || style > EOLNUL {
		return nil, fmt.Errorf("%w: Buffer.ReadLine(%v)", ErrInvalid, style)
	}
	if b.frozenFront {
		return nil, frozenError("ReadLine", "front")
	}
	n, term := b.findEOL(style)
	if n < 0 {
		return nil, errNoLine
	}
	line = make([]byte, n)
	b.Peek(line)
	b.drain(n + term)
	return line, nil
}

// findEOL returns the length of the first line and of its terminator, or
// -1 when no complete line is buffered.
func (b *Buffer) findEOL(style EOLStyle) (n, term int) {
	switch style {
	case EOLAny:
		n = b.indexCRLF()
		if n < 0 {
			return -1, 0
		}
		return n, b.spanCRLF(n)
	case EOLCRLF:
		n = b.indexByte('\n')
		if n > 0 && b.at(n-1) == '\r' {
			return n - 1, 2
		}
		return n, 1
	case EOLCRLFStrict:
		return b.Index(crlf), 2
	case EOLLF:
		return b.indexByte('\n'), 1
	default:
		return b.indexByte(0), 1
	}
}

// indexByte returns the offset of the first c, or -1.
func (b *Buffer) indexByte(c byte) int {
	base := 0
	for _, ch := range b.chain() {
		if i := bytes.IndexByte(ch.bytes(), c); i >= 0 {
			return base + i
		}
		base += ch.len()
	}
	return -1
}

// indexCRLF returns the offset of the first CR or LF, or -1.
func (b *Buffer) indexCRLF() int {
	base := 0
	for _, ch := range b.chain() {
		if i := bytes.IndexAny(ch.bytes(), "\r\n"); i >= 0 {
			return base + i
		}
		base += ch.len()
	}
	return -1
}

// spanCRLF returns how many bytes from offset off on are CR or LF.
func (b *Buffer) spanCRLF(off int) int {
	n := 0
	for _, ch := range b.chain() {
		data := ch.bytes()
		if off >= len(data) {
			off -= len(data)
			continue
		}
		for _, c := range data[off:] {
			if c != '\r' && c != '\n' {
				return n
			}
			n++
		}
		off = 0
	}
	return n
}

// at returns the byte at offset i, which must be below Len().
func (b *Buffer) at(i int) byte {
	for _, ch := range b.chain() {
		if i < ch.len() {
			return ch.buf[ch.off+i]
		}
		i -= ch.len()
	}
	panic("actor: Buffer offset out of range")
}
