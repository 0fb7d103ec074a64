package main

import (
	"io"
	"strings"
	"testing"

	"github.com/bevgo/bev/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	out := testkit.Output(t, func(w io.Writer) error { return run(w, "127.0.0.1:0") })
	want := "hello over TLS\nthe handshake ran on a goroutine the socket owns\n"
	if !strings.HasPrefix(out, "connected with TLS 1.3\n") || !strings.HasSuffix(out, want) {
		t.Errorf("run() printed %q", out)
	}
}
