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
