package main

import (
	"testing"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	out := testkit.Output(t, run)
	want := "HELLO, BUFFEREVENT\nNO GOROUTINE IS LEFT BEHIND\nBYE\n"
	if out != want {
		t.Errorf("run() printed %q, want %q", out, want)
	}
}
