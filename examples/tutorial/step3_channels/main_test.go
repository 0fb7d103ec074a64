package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	testkit.CheckOutput(t, run, "server: In closed, Err() = EOF\nclient: received \"ONE\\nTWO\\nTHREE\\n\", Err() = EOF\n")
}

// TestExercise is the answer to step 3's exercise: Close drops what the
// output still holds (it is libevent's free), so the server may get
// nothing; Drain delivers every byte, sends EOF, then closes, and a Send
// after it fails at once with an error wrapping actor.ErrClosed.
func TestExercise(t *testing.T) {
	client, server := testbev.NewPair(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	in := server.In()
	if err := client.Send(ctx, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if err := client.Drain(ctx); err != nil {
		t.Fatalf("Drain() = %v", err)
	}
	var got []byte
	for done := false; !done; {
		select {
		case chunk, ok := <-in:
			got, done = append(got, chunk...), !ok
		case <-ctx.Done():
			t.Fatalf("server's In still open after %q", got)
		}
	}
	if string(got) != "one\n" || !errors.Is(server.Err(), io.EOF) {
		t.Errorf("server got %q, Err() = %v; want %q, EOF", got, server.Err(), "one\n")
	}
	if err := client.Send(ctx, []byte("two\n")); !errors.Is(err, actor.ErrClosed) {
		t.Errorf("Send after Drain = %v, want an error wrapping actor.ErrClosed", err)
	}
}
