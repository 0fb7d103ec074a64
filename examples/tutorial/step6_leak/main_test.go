package main

import (
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

// TestMain checks, as every package's tests do, that nothing is left
// running when the tests end: the leak the program shows is closed by the
// program itself.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	testkit.CheckOutput(t, run, "after leaky: leak found: true\nafter Close: leak found: false\nafter fixed: leak found: false\n")
}

// TestExercise is the answer to step 6's exercise: closing both ends of
// the pair, but not the Base, still leaks the Base's dispatcher; only
// base.Close joins it.
func TestExercise(t *testing.T) {
	base := actor.NewBase()
	a, b, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	if goleak.Find() == nil {
		t.Errorf("goleak.Find() = nil after closing both ends, want the Base's dispatcher reported")
	}
	base.Close()
	if err := goleak.Find(); err != nil {
		t.Errorf("goleak.Find() after base.Close() = %v, want nil", err)
	}
}
