package actor_test

import (
	"errors"
	"testing"

	"github.com/bevgo/bev/actor"
)

func TestBufferReadLine(t *testing.T) {
	tests := []struct {
		name   string
		style  actor.EOLStyle
		pieces []string
		lines  []string // read until ErrNoLine
		rest   string
	}{
		// EOLAny: any run of CR and LF is one terminator.
		{"any/lf", actor.EOLAny, []string{"a\nb\n"}, []string{"a", "b"}, ""},
		{"any/crlf", actor.EOLAny, []string{"a\r\nb"}, []string{"a"}, "b"},
		{"any/run is one terminator", actor.EOLAny, []string{"a\n\r\n\rb\n"}, []string{"a", "b"}, ""},
		{"any/leading terminator is an empty line", actor.EOLAny, []string{"\r\nb\n"}, []string{"", "b"}, ""},
		{"any/trailing CR is complete", actor.EOLAny, []string{"a\r"}, []string{"a"}, ""},
		{"any/CR LF split across chunks", actor.EOLAny, []string{"a\r", "\n"}, []string{"a"}, ""},
		{"any/run across chunks", actor.EOLAny, []string{"a\r", "\n", "\r\nb", "\n"}, []string{"a", "b"}, ""},
		{"any/no terminator", actor.EOLAny, []string{"abc"}, nil, "abc"},
		{"any/line across chunks", actor.EOLAny, []string{"ab", "cd", "e\nf"}, []string{"abcde"}, "f"},

		// EOLCRLF: LF, optionally preceded by CR.
		{"crlf/lf", actor.EOLCRLF, []string{"a\nb\n"}, []string{"a", "b"}, ""},
		{"crlf/crlf", actor.EOLCRLF, []string{"a\r\nb\r\n"}, []string{"a", "b"}, ""},
		{"crlf/split across chunks", actor.EOLCRLF, []string{"a\r", "\nb"}, []string{"a"}, "b"},
		{"crlf/bare CR stays in line", actor.EOLCRLF, []string{"a\rb\n"}, []string{"a\rb"}, ""},
		{"crlf/CR CR LF keeps one CR", actor.EOLCRLF, []string{"a\r\r\n"}, []string{"a\r"}, ""},
		{"crlf/trailing CR waits", actor.EOLCRLF, []string{"a\r"}, nil, "a\r"},
		{"crlf/empty lines", actor.EOLCRLF, []string{"\r\n\n\r\n"}, []string{"", "", ""}, ""},
		{"crlf/no terminator", actor.EOLCRLF, []string{"abc"}, nil, "abc"},

		// EOLCRLFStrict: exactly CR LF.
		{"strict/crlf", actor.EOLCRLFStrict, []string{"a\r\nb\r\n"}, []string{"a", "b"}, ""},
		{"strict/lf alone is data", actor.EOLCRLFStrict, []string{"a\nb\r\n"}, []string{"a\nb"}, ""},
		{"strict/split across chunks", actor.EOLCRLFStrict, []string{"ab\r", "\ncd"}, []string{"ab"}, "cd"},
		{"strict/trailing CR waits", actor.EOLCRLFStrict, []string{"a\r"}, nil, "a\r"},
		{"strict/CR CR LF", actor.EOLCRLFStrict, []string{"a\r\r\n"}, []string{"a\r"}, ""},
		{"strict/empty lines", actor.EOLCRLFStrict, []string{"\r\n", "\r\n"}, []string{"", ""}, ""},

		// EOLLF: LF only, CR is data.
		{"lf/lf", actor.EOLLF, []string{"a\nb\n"}, []string{"a", "b"}, ""},
		{"lf/CR kept", actor.EOLLF, []string{"a\r\n"}, []string{"a\r"}, ""},
		{"lf/empty lines", actor.EOLLF, []string{"\n", "\n"}, []string{"", ""}, ""},
		{"lf/no terminator", actor.EOLLF, []string{"a\r"}, nil, "a\r"},
		{"lf/terminator in later chunk", actor.EOLLF, []string{"ab", "c", "\n"}, []string{"abc"}, ""},

		// EOLNUL: a NUL byte.
		{"nul/nul", actor.EOLNUL, []string{"a\x00b\x00"}, []string{"a", "b"}, ""},
		{"nul/newlines are data", actor.EOLNUL, []string{"a\r\n\x00"}, []string{"a\r\n"}, ""},
		{"nul/no terminator", actor.EOLNUL, []string{"a\n"}, nil, "a\n"},
		{"nul/empty line", actor.EOLNUL, []string{"\x00", "x"}, []string{""}, "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, tc.pieces...)
			for _, want := range tc.lines {
				line, err := b.ReadLine(tc.style)
				if err != nil || string(line) != want {
					t.Fatalf("ReadLine(%v) = %q, %v, want %q, nil", tc.style, line, err, want)
				}
				if line == nil {
					t.Errorf("ReadLine(%v) returned a nil line, want non-nil", tc.style)
				}
			}
			line, err := b.ReadLine(tc.style)
			if line != nil || !errors.Is(err, actor.ErrNoLine) {
				t.Errorf("final ReadLine(%v) = %q, %v, want nil, ErrNoLine", tc.style, line, err)
			}
			if got := contents(b); got != tc.rest {
				t.Errorf("remaining contents = %q, want %q", got, tc.rest)
			}
		})
	}
}

func TestBufferReadLineAnyTrailingCR(t *testing.T) {
	// libevent's choice, kept on purpose: a CR at the very end of the
	// buffer completes the line, so the LF that follows later ends an empty
	// line of its own.
	b := build(t, "a\r")
	if line, err := b.ReadLine(actor.EOLAny); string(line) != "a" || err != nil {
		t.Fatalf("ReadLine(EOLAny) = %q, %v, want %q, nil", line, err, "a")
	}
	if _, err := b.WriteString("\nb\n"); err != nil {
		t.Fatalf("WriteString() = %v, want nil", err)
	}
	for _, want := range []string{"", "b"} {
		if line, err := b.ReadLine(actor.EOLAny); string(line) != want || err != nil {
			t.Fatalf("ReadLine(EOLAny) = %q, %v, want %q, nil", line, err, want)
		}
	}
}

func TestBufferReadLineOwnsResult(t *testing.T) {
	b := build(t, "abc\n", "def\n")
	line, err := b.ReadLine(actor.EOLLF)
	if err != nil {
		t.Fatalf("ReadLine(EOLLF) = %v, want nil", err)
	}
	line[0] = 'X'
	if got := contents(b); got != "def\n" {
		t.Errorf("after changing the line, contents = %q, want %q", got, "def\n")
	}
}

func TestBufferReadLineInvalidStyle(t *testing.T) {
	for _, style := range []actor.EOLStyle{-1, actor.EOLNUL + 1, 100} {
		b := build(t, "a\n")
		line, err := b.ReadLine(style)
		if line != nil || !errors.Is(err, actor.ErrInvalid) {
			t.Errorf("ReadLine(%v) = %q, %v, want nil, ErrInvalid", style, line, err)
		}
		if got := contents(b); got != "a\n" {
			t.Errorf("after ReadLine(%v), contents = %q, want %q", style, got, "a\n")
		}
	}
}

func TestEOLStyleString(t *testing.T) {
	tests := []struct {
		style actor.EOLStyle
		want  string
	}{
		{actor.EOLAny, "EOLAny"},
		{actor.EOLCRLF, "EOLCRLF"},
		{actor.EOLCRLFStrict, "EOLCRLFStrict"},
		{actor.EOLLF, "EOLLF"},
		{actor.EOLNUL, "EOLNUL"},
		{7, "EOLStyle(7)"},
	}
	for _, tc := range tests {
		if got := tc.style.String(); got != tc.want {
			t.Errorf("EOLStyle(%d).String() = %q, want %q", int(tc.style), got, tc.want)
		}
	}
}
