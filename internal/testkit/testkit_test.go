package testkit

import "testing"

// RecvAll returns every chunk sent before the close, joined in order,
// whether they were buffered or sent while it waited.
func TestRecvAll(t *testing.T) {
	c := make(chan []byte, 2)
	c <- []byte("ab")
	c <- []byte("c")
	go func() {
		c <- []byte("de")
		close(c)
	}()
	if got := RecvAll(t, c, "c"); string(got) != "abcde" {
		t.Errorf("RecvAll() = %q, want %q", got, "abcde")
	}
}

// UniqueMismatch finds the first byte that is not the stream's, at the
// offset got stands at, and -1 for a match.
func TestUniqueMismatch(t *testing.T) {
	p := UniqueAt(3, 10, 8)
	if got := UniqueMismatch(3, 10, p); got != -1 {
		t.Errorf("UniqueMismatch(the stream itself) = %d, want -1", got)
	}
	if got := UniqueMismatch(3, 11, p); got != 11 {
		t.Errorf("UniqueMismatch(shifted by one) = %d, want 11", got)
	}
	p[5]++
	if got := UniqueMismatch(3, 10, p); got != 15 {
		t.Errorf("UniqueMismatch(byte 15 changed) = %d, want 15", got)
	}
	if got := UniqueMismatch(3, 10, nil); got != -1 {
		t.Errorf("UniqueMismatch(nothing) = %d, want -1", got)
	}
}
