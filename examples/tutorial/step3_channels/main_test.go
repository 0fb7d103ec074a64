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
	want := "server: In closed, Err() = EOF\nclient: received \"ONE\\nTWO\\nTHREE\\n\", Err() = EOF\n"
	if out.String() != want {
		t.Errorf("run() printed %q, want %q", out.String(), want)
	}
}
