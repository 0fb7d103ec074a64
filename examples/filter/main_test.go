package main

import (
	"strings"
	"testing"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	out := testkit.Output(t, run)
	if !strings.HasPrefix(out, "sent 10800 bytes as ") || !strings.HasSuffix(out, "the server read them all back\n") {
		t.Errorf("run() printed %q", out)
	}
}
