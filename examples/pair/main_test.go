package main

import (
	"testing"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	testkit.CheckOutput(t, run, "HELLO, BUFFEREVENT\nNO GOROUTINE IS LEFT BEHIND\nBYE\n")
}
