package bev_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/pipeline"
)

// Error strings say each package's prefix once, however the error was
// wrapped on its way up, and errors.Is still finds every sentinel (issue
// 13, item 13).
func TestErrorPrefixesOnce(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	sock, err := conn.New(base, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	ctx := context.Background()

	process := func(st pipeline.Stage, in string, mode actor.FlushMode) error {
		var src, dst actor.Buffer
		src.Write([]byte(in))
		_, err := st.Process(&dst, &src, -1, mode)
		return err
	}
	lines, _ := pipeline.LineDecoder(actor.EOLLF, 4)
	frames, _ := pipeline.LengthDecoder(10)
	frames2, _ := pipeline.LengthDecoder(10)
	failing := pipeline.StageFunc(func(dst, src *actor.Buffer, limit int, mode actor.FlushMode) (pipeline.Result, error) {
		return pipeline.Failed, pipeline.ErrCorrupt
	})
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, acceptErr := ln.Accept(ctx)
	var noTLS *tlsconn.TLS
	_, flagsErr := noTLS.SetFlags(0)
	var buf actor.Buffer

	cases := []struct {
		name string
		err  error
		want []error
	}{
		{"connect port 0", sock.ConnectHostname(ctx, nil, "tcp", "localhost", 0), []error{conn.ErrPort, actor.ErrInvalid}},
		{"connect bad network", sock.ConnectHostname(ctx, nil, "udp", "localhost", 80), []error{conn.ErrNetwork, actor.ErrInvalid}},
		{"accept after close", acceptErr, []error{conn.ErrListenerClosed}},
		{"flags of no TLS", flagsErr, []error{tlsconn.ErrNotTLS}},
		{"frame too large", process(frames, "\x00\x00\x00\x63", actor.Normal), []error{pipeline.ErrFrameTooLarge}},
		{"truncated frame", process(frames2, "\x00\x00", actor.Finished), []error{pipeline.ErrTruncated}},
		{"line too long", process(lines, "0123456789", actor.Normal), []error{pipeline.ErrLineTooLong}},
		{"corrupt gzip", process(pipeline.Gunzip(), strings.Repeat("not gzip", 10), actor.Finished), []error{pipeline.ErrCorrupt}},
		{"chain of a failing stage", process(pipeline.Chain(failing, pipeline.Gunzip()), "x", actor.Normal), []error{pipeline.ErrCorrupt}},
		{"buffer drain", buf.Drain(-1), []error{actor.ErrInvalid}},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: nil error, want %v", c.name, c.want)
			continue
		}
		msg := c.err.Error()
		for _, prefix := range []string{"actor:", "conn:", "tlsconn:", "pipeline:"} {
			if n := strings.Count(msg, prefix); n > 1 {
				t.Errorf("%s: %q says %q %d times, want at most once", c.name, msg, prefix, n)
			}
		}
		for _, w := range c.want {
			if !errors.Is(c.err, w) {
				t.Errorf("%s: errors.Is(%q, %v) = false", c.name, msg, w)
			}
		}
	}
}
