package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/pipeline"
)

// run compresses a text through a gzip filter over TCP to a server that
// decompresses it and reports what it got.
func run(w io.Writer) error {
	base := actor.NewBase()
	defer base.Close() // closes the listener, the sockets and the filters

	received := make(chan []byte, 1)
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			f, err := pipeline.NewFilter(s.Bufferevent, pipeline.Gunzip(), pipeline.Gzip(), actor.CloseOnFree)
			if err != nil {
				s.Free()
				return
			}
			var got bytes.Buffer // touched only by f's callbacks
			f.SetCallbacks(actor.Callbacks{
				Read: func(s *actor.Session) { s.Input().WriteTo(&got) },
				Event: func(s *actor.Session, ev actor.Event, err error) {
					if ev&actor.EOF != 0 {
						received <- got.Bytes()
					}
					if ev&(actor.EOF|actor.Error) != 0 {
						s.Close()
					}
				},
			})
			f.Enable(actor.Read)
		})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		return err
	}
	if err := sock.ConnectAddr(ctx, "tcp", ln.Addr().String()); err != nil {
		return err
	}
	wire := new(pipeline.Counter)
	client, err := pipeline.NewFilter(sock.Bufferevent, nil, pipeline.Chain(pipeline.Gzip(), wire), actor.CloseOnFree)
	if err != nil {
		return err
	}
	text := bytes.Repeat([]byte("bufferevents compose: filters are stages on an actor.\n"), 200)
	if err := client.Write(text); err != nil {
		return err
	}
	if err := client.Drain(ctx); err != nil { // gzip trailer, half-close, close
		return err
	}
	select {
	case got := <-received:
		if !bytes.Equal(got, text) {
			return fmt.Errorf("server got %d bytes, not the %d sent", len(got), len(text))
		}
		fmt.Fprintf(w, "sent %d bytes as %d gzip bytes; the server read them all back\n", len(text), wire.Bytes())
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
