package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bevgo/bev/actor"
)

// Framing limits used when a constructor is given 0.
const (
	// DefaultMaxLine is the longest line a line decoder accepts.
	DefaultMaxLine = 64 << 10
	// DefaultMaxFrame is the largest payload of a length-prefixed frame.
	DefaultMaxFrame = 64 << 10
)

// FrameHeaderLen is the size of a length-prefixed frame's header: the
// payload length as a big-endian uint32.
const FrameHeaderLen = 4

var newline = []byte{'\n'}

// LineDecoder returns an input stage that turns lines ended in style into
// lines ended by "\n", and passes on only complete lines: read them from
// the filter's input with ReadLine(actor.EOLLF). With EOLAny, whose runs of
// CR and LF cannot express an empty line, empty lines are dropped. At
// Finished a last line without an end is passed on with "\n" added. A line
// longer than max bytes (DefaultMaxLine when max is 0) fails with an error
// wrapping ErrLineTooLong, whether or not its end has arrived. Under a
// limit a line may be passed on in parts; what is held back is reported
// through Buffered. It fails with an error wrapping ErrInvalid for an
// unknown style or a negative max.
func LineDecoder(style actor.EOLStyle, max int) (Stage, error) {
	if style < actor.EOLAny || style > actor.EOLNUL {
		return nil, fmt.Errorf("%w: end-of-line style %v", ErrInvalid, style)
	}
	if max < 0 {
		return nil, fmt.Errorf("%w: negative maximum line length %d", ErrInvalid, max)
	}
	if max == 0 {
		max = DefaultMaxLine
	}
	return &lineDecoder{style: style, max: max}, nil
}

type lineDecoder struct {
	style actor.EOLStyle
	max   int
	// part is the line being assembled: bytes scanned once and known to
	// hold no end of line, so that each byte is scanned only once
	// however long the line grows (up to max). It never ends in a CR
	// that an LF may still turn into a terminator: such a CR waits in
	// src until the byte after it arrives.
	part actor.Buffer
	held actor.Buffer
	err  error
}

// term returns the byte that ends a line in style (for EOLCRLF and
// EOLCRLFStrict the LF, checked for a CR before it), or -1 for EOLAny.
func (d *lineDecoder) term() int {
	switch d.style {
	case actor.EOLNUL:
		return 0
	case actor.EOLAny:
		return -1
	}
	return '\n'
}

func (d *lineDecoder) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if d.err != nil {
		return Failed, d.err
	}
	srcBefore := src.Len()
	moved := emit(dst, &d.held, limit)
	for d.held.Len() == 0 && remaining(limit, moved) != 0 {
		line, err := d.scan(src)
		if err != nil {
			return Failed, err
		}
		if !line {
			if mode != actor.Finished || (src.Len() == 0 && d.part.Len() == 0) {
				break
			}
			// The last line, without an end: what is left of src
			// (at most a CR) is part of it.
			moveN(&d.part, src, -1)
			if d.part.Len() > d.max {
				return Failed, d.fail(d.part.Len())
			}
		}
		d.held.MoveFrom(&d.part)
		d.held.Write(newline)
		moved += emit(dst, &d.held, remaining(limit, moved))
	}
	return result(moved > 0 || src.Len() != srcBefore), nil
}

// scan moves the bytes of src that belong to the current line into part
// and reports whether the line is complete (its terminator drained from
// src). Each byte of src is looked at once, whatever the maximum.
func (d *lineDecoder) scan(src *actor.Buffer) (bool, error) {
	crlf := d.style == actor.EOLCRLF || d.style == actor.EOLCRLFStrict
	for src.Len() > 0 {
		n := min(src.Len(), pullMax)
		seg := src.Pullup(n)
		if d.style == actor.EOLAny && d.part.Len() == 0 {
			// EOLAny's terminator is a whole run of CR and LF, and the
			// empty lines a run could mean are dropped: skip it.
			k := 0
			for k < len(seg) && (seg[k] == '\r' || seg[k] == '\n') {
				k++
			}
			if k > 0 {
				src.Drain(k)
				continue
			}
		}
		var i int
		if d.style == actor.EOLAny {
			i = bytes.IndexAny(seg, "\r\n")
		} else {
			i = bytes.IndexByte(seg, byte(d.term()))
		}
		if i < 0 {
			// No end here. A CR at the end may start a CR LF: leave it.
			keep := n
			if crlf && seg[n-1] == '\r' {
				keep--
			}
			if keep == 0 {
				return false, nil
			}
			moveN(&d.part, src, keep)
			if d.part.Len() > d.max {
				return false, d.fail(d.part.Len())
			}
			continue
		}
		end, skip := i, 1
		if crlf && i > 0 && seg[i-1] == '\r' {
			end, skip = i-1, 2
		} else if d.style == actor.EOLCRLFStrict {
			// An LF without a CR is part of the line.
			moveN(&d.part, src, i+1)
			if d.part.Len() > d.max {
				return false, d.fail(d.part.Len())
			}
			continue
		}
		moveN(&d.part, src, end)
		src.Drain(skip)
		if d.part.Len() > d.max {
			return false, d.fail(d.part.Len())
		}
		return true, nil
	}
	return false, nil
}

func (d *lineDecoder) fail(n int) error {
	d.err = fmt.Errorf("%w: line decoder: %d bytes without an end of line, maximum %d", ErrLineTooLong, n, d.max)
	return d.err
}

// Buffered is the decoded output held back by the limit.
func (d *lineDecoder) Buffered() int { return d.held.Len() }

// LineEncoder returns an output stage that ends lines in style: every
// "\n" becomes CR LF for EOLCRLF and EOLCRLFStrict, NUL for EOLNUL, and
// stays "\n" for EOLLF and EOLAny. Bytes pass on as they come; the encoder
// waits for nothing. It fails with an error wrapping ErrInvalid for an
// unknown style.
func LineEncoder(style actor.EOLStyle) (Stage, error) {
	var term []byte
	switch style {
	case actor.EOLAny, actor.EOLLF:
		return PassThrough(), nil
	case actor.EOLCRLF, actor.EOLCRLFStrict:
		term = []byte("\r\n")
	case actor.EOLNUL:
		term = []byte{0}
	default:
		return nil, fmt.Errorf("%w: end-of-line style %v", ErrInvalid, style)
	}
	return &lineEncoder{term: term}, nil
}

type lineEncoder struct {
	term []byte
	held actor.Buffer
}

func (e *lineEncoder) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	srcBefore := src.Len()
	moved := emit(dst, &e.held, limit)
	for e.held.Len() == 0 && src.Len() > 0 && remaining(limit, moved) != 0 {
		n := min(src.Len(), pullMax)
		seg := src.Pullup(n)
		for len(seg) > 0 {
			i := bytes.IndexByte(seg, '\n')
			if i < 0 {
				e.held.Write(seg)
				break
			}
			e.held.Write(seg[:i])
			e.held.Write(e.term)
			seg = seg[i+1:]
		}
		src.Drain(n)
		moved += emit(dst, &e.held, remaining(limit, moved))
	}
	return result(moved > 0 || src.Len() != srcBefore), nil
}

// Buffered is the encoded output held back by the limit.
func (e *lineEncoder) Buffered() int { return e.held.Len() }

// LengthEncoder returns an output stage that frames the stream: each call
// puts what has arrived into frames of at most max payload bytes
// (DefaultMaxFrame when max is 0), each preceded by its length as a
// big-endian uint32 (FrameHeaderLen bytes). A [LengthDecoder] with the
// same max restores the stream. Under a limit, output is held back and
// reported through Buffered. It fails with an error wrapping ErrInvalid
// for a negative max or one above math.MaxUint32.
func LengthEncoder(max int) (Stage, error) {
	max, err := frameMax(max)
	if err != nil {
		return nil, err
	}
	return &lengthEncoder{max: max}, nil
}

func frameMax(max int) (int, error) {
	if max < 0 || uint64(max) > math.MaxUint32 {
		return 0, fmt.Errorf("%w: maximum frame size %d", ErrInvalid, max)
	}
	if max == 0 {
		max = DefaultMaxFrame
	}
	return max, nil
}

type lengthEncoder struct {
	max  int
	hdr  [FrameHeaderLen]byte
	held actor.Buffer
}

func (e *lengthEncoder) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	srcBefore := src.Len()
	moved := emit(dst, &e.held, limit)
	for e.held.Len() == 0 && src.Len() > 0 && remaining(limit, moved) != 0 {
		n := min(src.Len(), e.max)
		binary.BigEndian.PutUint32(e.hdr[:], uint32(n))
		e.held.Write(e.hdr[:])
		moveN(&e.held, src, n)
		moved += emit(dst, &e.held, remaining(limit, moved))
	}
	return result(moved > 0 || src.Len() != srcBefore), nil
}

// Buffered is the framed output held back by the limit.
func (e *lengthEncoder) Buffered() int { return e.held.Len() }

// LengthDecoder returns an input stage that reads frames made by a
// [LengthEncoder] and passes on their payloads, each frame once it has
// arrived whole. A header claiming more than max bytes (DefaultMaxFrame
// when max is 0) fails at once with an error wrapping ErrFrameTooLarge:
// the claimed size is never buffered nor allocated. A stream that ends
// (Finished) inside a frame fails with one wrapping ErrTruncated. Under a
// limit a payload may be passed on in parts; what is held back is reported
// through Buffered. It fails with an error wrapping ErrInvalid for a
// negative max or one above math.MaxUint32.
func LengthDecoder(max int) (Stage, error) {
	max, err := frameMax(max)
	if err != nil {
		return nil, err
	}
	return &lengthDecoder{max: max}, nil
}

type lengthDecoder struct {
	max  int
	hdr  [FrameHeaderLen]byte
	held actor.Buffer
	err  error
}

func (d *lengthDecoder) Process(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (Result, error) {
	if err := CheckProcess(dst, src, mode); err != nil {
		return Failed, err
	}
	if d.err != nil {
		return Failed, d.err
	}
	srcBefore := src.Len()
	moved := emit(dst, &d.held, limit)
	for d.held.Len() == 0 && remaining(limit, moved) != 0 && src.Len() >= FrameHeaderLen {
		src.Peek(d.hdr[:])
		n := binary.BigEndian.Uint32(d.hdr[:])
		if uint64(n) > uint64(d.max) {
			d.err = fmt.Errorf("%w: length decoder: header claims %d bytes, maximum %d", ErrFrameTooLarge, n, d.max)
			return Failed, d.err
		}
		if src.Len()-FrameHeaderLen < int(n) {
			break
		}
		src.Drain(FrameHeaderLen)
		moveN(&d.held, src, int(n))
		moved += emit(dst, &d.held, remaining(limit, moved))
	}
	// At the end, bytes that cannot make a frame are a truncated one; but
	// a call that the limit stopped has not looked at them yet.
	if mode == actor.Finished && d.held.Len() == 0 && src.Len() > 0 && remaining(limit, moved) != 0 {
		d.err = fmt.Errorf("%w: length decoder: %d bytes of an incomplete frame", ErrTruncated, src.Len())
		return Failed, d.err
	}
	return result(moved > 0 || src.Len() != srcBefore), nil
}

// Buffered is the payload held back by the limit.
func (d *lengthDecoder) Buffered() int { return d.held.Len() }
