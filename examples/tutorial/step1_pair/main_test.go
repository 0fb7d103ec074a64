package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run() = %v", err)
	}
	if want := "b received \"hello, pair\"\n"; out.String() != want {
		t.Errorf("run() printed %q, want %q", out.String(), want)
	}
}

// TestExercise is the answer to step 1's exercise: b answers "hello, a",
// and a, which must ask for its own In first, receives it.
func TestExercise(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	aIn, bIn := a.In(), b.In()
	if err := a.Write([]byte("hello, pair")); err != nil {
		t.Fatal(err)
	}
	if got := string(recv(t, bIn)); got != "hello, pair" {
		t.Fatalf("b received %q, want %q", got, "hello, pair")
	}
	if err := b.Write([]byte("hello, a")); err != nil {
		t.Fatal(err)
	}
	if got := string(recv(t, aIn)); got != "hello, a" {
		t.Errorf("a received %q, want %q", got, "hello, a")
	}
}

// recv waits up to a second for one chunk on in.
func recv(t *testing.T, in <-chan []byte) []byte {
	t.Helper()
	select {
	case p := <-in:
		return p
	case <-time.After(time.Second):
		t.Fatal("nothing received within a second")
		return nil
	}
}
