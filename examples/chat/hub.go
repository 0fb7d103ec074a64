package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
)

// hub is the set of connected members. Callbacks of many connections call
// it at once, each from its own actor goroutine.
type hub struct {
	maxQueue int
	log      *slog.Logger

	mu      sync.Mutex // guards following
	members map[*conn.Socket]string
}

// join sets up an accepted connection as a member.
func (h *hub) join(s *conn.Socket) {
	name := s.Conn().RemoteAddr().String()
	h.mu.Lock()
	h.members[s] = name
	h.mu.Unlock()
	h.log.Info("joined", "member", name)
	s.SetCallbacks(actor.Callbacks{
		Read: func(ss *actor.Session) {
			for {
				line, err := ss.Input().ReadLine(actor.EOLLF)
				if err != nil {
					return // no complete line yet
				}
				h.broadcast(s, fmt.Appendf(nil, "%s: %s\n", name, line))
			}
		},
		Event: func(ss *actor.Session, ev actor.Event, err error) {
			if ev&(actor.EOF|actor.Error) != 0 {
				h.leave(s, fmt.Sprint(ev))
				ss.Close()
			}
		},
	})
	s.Enable(actor.Read | actor.Write)
}

// broadcast queues msg on every member but the sender. A member whose
// backlog has passed maxQueue is not keeping up: it is disconnected rather
// than allowed to hold an unbounded amount of memory.
func (h *hub) broadcast(from *conn.Socket, msg []byte) {
	var slow []*conn.Socket
	h.mu.Lock()
	for m := range h.members {
		switch {
		case m == from:
		case m.OutputLen() > h.maxQueue:
			slow = append(slow, m)
		default:
			m.Write(msg) // copies and queues; never blocks
		}
	}
	h.mu.Unlock()
	for _, m := range slow {
		h.leave(m, "too slow")
		m.Free() // Free, not Close: we may be on another member's actor
	}
}

func (h *hub) leave(s *conn.Socket, why string) {
	h.mu.Lock()
	name, ok := h.members[s]
	delete(h.members, s)
	h.mu.Unlock()
	if ok {
		h.log.Info("left", "member", name, "why", why)
	}
}

// run serves the chat on addr until ctx ends. ready, if not nil, is told
// the address once the server listens.
func run(ctx context.Context, addr string, maxQueue int, log *slog.Logger, ready func(net.Addr)) error {
	base := actor.NewBase()
	defer base.Close() // closes the listener and every member
	h := &hub{maxQueue: maxQueue, log: log, members: make(map[*conn.Socket]string)}
	ln, err := conn.Listen(base, "tcp", addr, conn.ListenerConfig{Options: actor.CloseOnFree}, h.join)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case <-ctx.Done():
	case <-ln.Done():
		return ln.Err()
	}
	return nil
}
