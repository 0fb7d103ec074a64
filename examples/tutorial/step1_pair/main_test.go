package main

import (
	"testing"

	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	testkit.CheckOutput(t, run, "b received \"hello, pair\"\n")
}

// TestExercise is the answer to step 1's exercise: b answers "hello, a",
// and a, which must ask for its own In first, receives it.
func TestExercise(t *testing.T) {
	a, b := testbev.NewPair(t, 0)
	aIn, bIn := a.In(), b.In()
	if err := a.Write([]byte("hello, pair")); err != nil {
		t.Fatal(err)
	}
	if got := string(testkit.Recv(t, bIn, "b's chunk")); got != "hello, pair" {
		t.Fatalf("b received %q, want %q", got, "hello, pair")
	}
	if err := b.Write([]byte("hello, a")); err != nil {
		t.Fatal(err)
	}
	if got := string(testkit.Recv(t, aIn, "a's chunk")); got != "hello, a" {
		t.Errorf("a received %q, want %q", got, "hello, a")
	}
}
