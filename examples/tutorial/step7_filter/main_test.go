package main

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
	"github.com/bevgo/bev/pipeline"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	out := testkit.Output(t, run)
	var n, wire int
	var intact bool
	var cause string
	if _, err := fmt.Sscanf(out, "server received %d bytes, intact: %t, Err() = %s\nthe pair carried %d bytes\n", &n, &intact, &cause, &wire); err != nil {
		t.Fatalf("run() printed %q: %v", out, err)
	}
	if n != len(text) || !intact || cause != "EOF" {
		t.Errorf("run() printed %q, want %d intact bytes and EOF", out, len(text))
	}
	if wire <= 0 || wire > len(text)/10 {
		t.Errorf("the pair carried %d bytes for %d of text, want fewer than a tenth", wire, len(text))
	}
}

// TestExercise is the answer to step 7's exercise: a second Tap after
// Gunzip in the server's input chain counts the lines as they come out.
func TestExercise(t *testing.T) {
	base := actor.NewBase()
	defer base.Close()
	rawClient, rawServer, err := actor.NewPair(base, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lines atomic.Int64
	countLines := pipeline.Tap(func(p []byte) { lines.Add(int64(bytes.Count(p, []byte("\n")))) })
	client, err := pipeline.NewFilter(rawClient, nil, pipeline.Gzip(), actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pipeline.NewFilter(rawServer, pipeline.Chain(pipeline.Gunzip(), countLines), nil, actor.CloseOnFree)
	if err != nil {
		t.Fatal(err)
	}
	in := server.In()
	client.Write([]byte(text))
	client.Flush(actor.Write, actor.Finished)
	timeout := time.After(time.Second)
	for done := false; !done; {
		select {
		case _, ok := <-in:
			done = !ok
		case <-timeout:
			t.Fatal("no EOF within a second")
		}
	}
	if n := lines.Load(); n != 200 {
		t.Errorf("the server's input stage counted %d lines, want 200", n)
	}
}
