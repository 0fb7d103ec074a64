package actor

import (
	_ "go.uber.org/goleak"
	_ "golang.org/x/net/nettest"
	_ "golang.org/x/time/rate"
)
