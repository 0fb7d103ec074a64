package main

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run() = %v", err)
	}
	want := "HELLO, BUFFEREVENT\nNO GOROUTINE IS LEFT BEHIND\nBYE\n"
	if out.String() != want {
		t.Errorf("run() printed %q, want %q", out.String(), want)
	}
}
