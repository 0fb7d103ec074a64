package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatalf("run() = %v", err)
	}
	if !strings.HasPrefix(out.String(), "sent 10800 bytes as ") || !strings.HasSuffix(out.String(), "the server read them all back\n") {
		t.Errorf("run() printed %q", out.String())
	}
}
