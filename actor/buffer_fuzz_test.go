package actor_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/bevgo/bev/actor"
)

// refReadLine is a byte-by-byte port of libevent's evbuffer_search_eol. It
// returns the line, how many bytes line plus terminator take, and whether a
// complete line was found.
func refReadLine(data []byte, style actor.EOLStyle) (line []byte, n int, ok bool) {
	isEOL := func(c byte) bool { return c == '\r' || c == '\n' }
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch style {
		case actor.EOLAny:
			if isEOL(c) {
				j := i
				for j < len(data) && isEOL(data[j]) {
					j++
				}
				return data[:i], j, true
			}
		case actor.EOLCRLF:
			if c == '\n' {
				return data[:i], i + 1, true
			}
			if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				return data[:i], i + 2, true
			}
		case actor.EOLCRLFStrict:
			if c == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				return data[:i], i + 2, true
			}
		case actor.EOLLF:
			if c == '\n' {
				return data[:i], i + 1, true
			}
		case actor.EOLNUL:
			if c == 0 {
				return data[:i], i + 1, true
			}
		}
	}
	return nil, 0, false
}

// opReader decodes fuzz input; it yields zeros once the input runs out.
type opReader struct{ p []byte }

func (r *opReader) byte() byte {
	if len(r.p) == 0 {
		return 0
	}
	c := r.p[0]
	r.p = r.p[1:]
	return c
}

// size returns a length from 0 to 65280, most of them small, so chunk
// boundaries of every size class are crossed.
func (r *opReader) size() int {
	a, b := int(r.byte()), int(r.byte())
	return a*a + b
}

// genPool is pseudo-random text over a small alphabet rich in line
// terminators, so ReadLine and Index find matches.
var genPool = func() []byte {
	const alphabet = "ab\r\n\x00"
	p := make([]byte, 1<<17)
	x := uint32(2463534242)
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = alphabet[x%uint32(len(alphabet))]
	}
	return p
}()

// gen returns a fresh copy of n bytes of genPool, starting at a place picked
// by seed.
func gen(n int, seed uint32) []byte {
	off := int(seed % uint32(len(genPool)-n+1))
	return bytes.Clone(genPool[off : off+n])
}

// Limits that keep each fuzz input fast: the data held, the operations run,
// and the size up to which contents are compared after every step rather
// than only at the end.
const (
	maxModel     = 256 << 10
	maxSteps     = 256
	maxStepCheck = 16 << 10
)

const (
	opWrite = iota
	opWriteString
	opAppendOwned
	opRead
	opDrain
	opPeek
	opFillOther
	opMoveIn
	opMoveOut
	opReadLine
	opPullup
	opIndex
	opWriteTo
	opReadFrom
	opReset
	numOps
)

func FuzzBufferDifferential(f *testing.F) {
	f.Add([]byte{opWrite, 10, 0, opRead, 0, 50})
	f.Add([]byte{opWrite, 30, 0, opWrite, 2, 0, opPullup, 31, 0, opReadLine, 0})
	f.Add([]byte{opAppendOwned, 3, 0, opAppendOwned, 0, 3, opIndex, 2, 'a', '\r', opDrain, 1, 0})
	f.Add([]byte{opFillOther, 100, 0, opWrite, 1, 1, opMoveIn, opMoveOut, opMoveIn, opWriteTo})
	f.Add([]byte{opWrite, 255, 255, opWrite, 200, 0, opReadLine, 1, opReadLine, 2, opReadLine, 3, opReadLine, 4})
	f.Add([]byte{opReadFrom, 40, 0, 1, opPeek, 30, 0, opReset, opWriteString, 9, 9})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var b, other actor.Buffer
		var model, otherModel bytes.Buffer
		r := &opReader{p: ops}
		var scratch []byte
		for step := 0; len(r.p) > 0 && step < maxSteps; step++ {
			op := r.byte() % numOps
			seed := uint32(step)*2654435761 + 1
			switch op {
			case opWrite, opWriteString, opAppendOwned, opFillOther:
				p := gen(r.size(), seed)
				if model.Len()+otherModel.Len()+len(p) > maxModel {
					continue
				}
				var err error
				switch op {
				case opWrite:
					_, err = b.Write(p)
				case opWriteString:
					_, err = b.WriteString(string(p))
				case opAppendOwned:
					err = b.AppendOwned(bytes.Clone(p))
				case opFillOther:
					_, err = other.Write(p)
					otherModel.Write(p)
				}
				if err != nil {
					t.Fatalf("step %d: op %d = %v, want nil", step, op, err)
				}
				if op != opFillOther {
					model.Write(p)
				}
			case opRead:
				p := make([]byte, r.size())
				n, err := b.Read(p)
				want := make([]byte, len(p))
				wn, werr := model.Read(want)
				if n != wn || err != werr || !bytes.Equal(p[:n], want[:wn]) {
					t.Fatalf("step %d: Read(%d) = %d, %v, want %d, %v", step, len(p), n, err, wn, werr)
				}
			case opDrain:
				n := r.size()
				if err := b.Drain(n); err != nil {
					t.Fatalf("step %d: Drain(%d) = %v, want nil", step, n, err)
				}
				model.Next(n)
			case opPeek:
				p := make([]byte, r.size())
				n := b.Peek(p)
				want := model.Bytes()[:min(len(p), model.Len())]
				if !bytes.Equal(p[:n], want) {
					t.Fatalf("step %d: Peek(%d) = %d bytes, want %d matching", step, len(p), n, len(want))
				}
			case opMoveIn, opMoveOut:
				dst, src, dm, sm := &b, &other, &model, &otherModel
				if op == opMoveOut {
					dst, src, dm, sm = src, dst, sm, dm
				}
				if err := dst.MoveFrom(src); err != nil {
					t.Fatalf("step %d: MoveFrom() = %v, want nil", step, err)
				}
				dm.Write(sm.Bytes())
				sm.Reset()
			case opReadLine:
				style := actor.EOLStyle(r.byte() % 6)
				line, err := b.ReadLine(style)
				if style > actor.EOLNUL {
					if !errors.Is(err, actor.ErrInvalid) {
						t.Fatalf("step %d: ReadLine(%v) = %v, want ErrInvalid", step, style, err)
					}
					break
				}
				wantLine, n, ok := refReadLine(model.Bytes(), style)
				if !ok {
					if line != nil || !errors.Is(err, actor.ErrNoLine) {
						t.Fatalf("step %d: ReadLine(%v) = %q, %v, want nil, ErrNoLine", step, style, line, err)
					}
					break
				}
				if err != nil || !bytes.Equal(line, wantLine) {
					t.Fatalf("step %d: ReadLine(%v) = %q, %v, want %q, nil", step, style, line, err, wantLine)
				}
				model.Next(n)
			case opPullup:
				n := r.size() - 1
				got := b.Pullup(n)
				want := model.Bytes()
				if n >= 0 && n < len(want) {
					want = want[:n]
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("step %d: Pullup(%d) = %d bytes, want %d matching", step, n, len(got), len(want))
				}
			case opIndex:
				sep := make([]byte, r.byte()%5)
				for i := range sep {
					sep[i] = "ab\r\n\x00"[r.byte()%5]
				}
				if got, want := b.Index(sep), bytes.Index(model.Bytes(), sep); got != want {
					t.Fatalf("step %d: Index(%q) = %d, want %d", step, sep, got, want)
				}
			case opWriteTo:
				var w bytes.Buffer
				n, err := b.WriteTo(&w)
				if err != nil || n != int64(model.Len()) || !bytes.Equal(w.Bytes(), model.Bytes()) {
					t.Fatalf("step %d: WriteTo() = %d, %v, want %d, nil and the same bytes", step, n, err, model.Len())
				}
				model.Reset()
			case opReadFrom:
				p := gen(r.size(), seed)
				var src io.Reader = bytes.NewReader(p)
				if r.byte()%2 == 1 {
					src = iotest.HalfReader(src)
				}
				if model.Len()+otherModel.Len()+len(p) > maxModel {
					continue
				}
				n, err := b.ReadFrom(src)
				if err != nil || n != int64(len(p)) {
					t.Fatalf("step %d: ReadFrom(%d bytes) = %d, %v, want %d, nil", step, len(p), n, err, len(p))
				}
				model.Write(p)
			case opReset:
				if err := b.Reset(); err != nil {
					t.Fatalf("step %d: Reset() = %v, want nil", step, err)
				}
				model.Reset()
			}
			if b.Len() != model.Len() || other.Len() != otherModel.Len() {
				t.Fatalf("step %d: Len() = %d and %d, want %d and %d", step, b.Len(), other.Len(), model.Len(), otherModel.Len())
			}
			if model.Len()+otherModel.Len() <= maxStepCheck {
				checkSame(t, step, "buffer", &b, &model, &scratch)
				checkSame(t, step, "other buffer", &other, &otherModel, &scratch)
			}
		}
		checkSame(t, maxSteps, "buffer", &b, &model, &scratch)
		checkSame(t, maxSteps, "other buffer", &other, &otherModel, &scratch)
	})
}

// checkSame fails unless b holds exactly the model's bytes.
func checkSame(t *testing.T, step int, name string, b *actor.Buffer, model *bytes.Buffer, scratch *[]byte) {
	t.Helper()
	if b.Len() != model.Len() {
		t.Fatalf("step %d: %s Len() = %d, want %d", step, name, b.Len(), model.Len())
	}
	if cap(*scratch) < b.Len() {
		*scratch = make([]byte, b.Len())
	}
	*scratch = (*scratch)[:b.Len()]
	if n := b.Peek(*scratch); n != model.Len() || !bytes.Equal((*scratch)[:n], model.Bytes()) {
		t.Fatalf("step %d: %s contents differ from the model", step, name)
	}
}

func FuzzReadLine(f *testing.F) {
	for style := range actor.EOLNUL + 1 {
		f.Add(uint8(style), []byte{2, 1}, []byte("a\r\nb\n\rc\x00d\r"))
		f.Add(uint8(style), []byte{1}, []byte("\r\n\r\n\n\n\r\r"))
		f.Add(uint8(style), []byte{}, []byte("no terminator"))
	}
	f.Fuzz(func(t *testing.T, style uint8, cuts, data []byte) {
		s := actor.EOLStyle(style % 5)
		// Split data into pieces at the given lengths; odd pieces are
		// owned, even ones copied, so chunk kinds and boundaries vary.
		var b actor.Buffer
		rest := data
		for i := 0; len(rest) > 0; i++ {
			k := len(rest)
			if i < len(cuts) {
				k = min(k, 1+int(cuts[i]))
			}
			var err error
			if i%2 == 1 {
				err = b.AppendOwned(bytes.Clone(rest[:k]))
			} else {
				_, err = b.Write(rest[:k])
			}
			if err != nil {
				t.Fatalf("appending piece %d = %v, want nil", i, err)
			}
			rest = rest[k:]
		}
		want := data
		for {
			line, err := b.ReadLine(s)
			wantLine, n, ok := refReadLine(want, s)
			if !ok {
				if line != nil || !errors.Is(err, actor.ErrNoLine) {
					t.Fatalf("ReadLine(%v) = %q, %v, want nil, ErrNoLine", s, line, err)
				}
				break
			}
			if err != nil || !bytes.Equal(line, wantLine) {
				t.Fatalf("ReadLine(%v) = %q, %v, want %q, nil", s, line, err, wantLine)
			}
			want = want[n:]
		}
		if got := contents(&b); got != string(want) {
			t.Fatalf("after ReadLine(%v) until ErrNoLine, contents = %q, want %q", s, got, want)
		}
	})
}
