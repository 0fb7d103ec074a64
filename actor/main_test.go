package actor_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/bevgo/bev/actor"
	"go.uber.org/goleak"
)

// TestMain checks, after every test passed, that no goroutine is left and
// that every share of the read budget came back: a bufferevent whose
// transport stopped gives its share back (see actor/readsize.go), so a
// share still held is a reader that was never stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(sharesChecked{m}) }

type sharesChecked struct{ m *testing.M }

func (s sharesChecked) Run() int {
	code := s.m.Run()
	if n := actor.ReadSharesHeld(); code == 0 && n != 0 {
		fmt.Fprintf(os.Stderr, "actor: %d shares of the read budget still held after the tests\n", n)
		return 1
	}
	return code
}
