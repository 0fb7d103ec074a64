package actor

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/bevgo/bev/internal/testkit"
)

// On a plain socket the half-close that follows the output is made by
// the actor itself (shutdown never waits): the peer reads every byte, then
// EOF, and no writer loop was started for it.
func TestSocketHalfCloseWithoutWriterLoop(t *testing.T) {
	b, c := socketBufferevent(t)
	want := testkit.Pattern(1000)
	if err := b.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(Write, Finished); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(testkit.WaitTime))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the peer read %d bytes (%v), want the %d written and then EOF", len(got), err, len(want))
	}
	var writerUp bool
	if err := b.Do(func(*Session) { writerUp = b.a.io.writerUp }); err != nil {
		t.Fatal(err)
	}
	if writerUp {
		t.Errorf("a writer loop was started for a write and a half-close the kernel took at once")
	}
}
