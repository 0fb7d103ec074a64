package pipeline_test

import (
	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/internal/testkit"
)

// Helpers shared by the tests of filters (filter_*_test.go, tls_test.go).

// eventLog records a bufferevent's events from its event callback.
type eventLog struct {
	c chan actor.EventInfo
}

func newEventLog() *eventLog { return &eventLog{c: make(chan actor.EventInfo, 64)} }

func (l *eventLog) callback(s *actor.Session, ev actor.Event, err error) {
	l.c <- actor.EventInfo{Event: ev, Err: err}
}

// none reports events logged so far.
func (l *eventLog) drain() []actor.EventInfo { return testkit.Pending(l.c) }
