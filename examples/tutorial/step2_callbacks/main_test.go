package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testbev"
	"github.com/bevgo/bev/internal/testkit"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	testkit.CheckOutput(t, run, "client received \"HELLO\\nCALLBACKS\\n\"\nserver saw Reading|EOF\n")
}

// TestExercise is the answer to step 2's exercise: the server answers
// each line with its length, and the client counts the answers.
func TestExercise(t *testing.T) {
	client, server := testbev.NewPair(t, 0)
	server.SetCallbacks(actor.Callbacks{Read: func(s *actor.Session) {
		for {
			line, err := s.Input().ReadLine(actor.EOLLF)
			if err != nil {
				return
			}
			fmt.Fprintf(s.Output(), "%d\n", len(line))
		}
	}})
	server.Enable(actor.Read)
	in := client.In()
	client.Write([]byte("hello\ncallbacks\n"))
	var got []byte
	timeout := time.After(time.Second)
	for !bytes.Equal(got, []byte("5\n9\n")) {
		select {
		case chunk := <-in:
			got = append(got, chunk...)
		case <-timeout:
			t.Fatalf("client received %q, want %q", got, "5\n9\n")
		}
	}
}
