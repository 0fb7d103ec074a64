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
	if err := run(&out, "127.0.0.1:0"); err != nil {
		t.Fatalf("run() = %v", err)
	}
	want := "hello over TLS\nthe handshake ran on a goroutine the socket owns\n"
	if !strings.HasPrefix(out.String(), "connected with TLS 1.3\n") || !strings.HasSuffix(out.String(), want) {
		t.Errorf("run() printed %q", out.String())
	}
}
