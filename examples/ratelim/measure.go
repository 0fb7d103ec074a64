package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/limiter"
)

// Sizes from test-ratelim.
const (
	// echoStop and echoResume are where an echo connection stops reading
	// (more output than this waiting) and starts again (less than this).
	echoStop   = 1024000
	echoResume = 512000
	// clientQueue is what a client keeps queued to send, topped up in
	// writes of clientChunk bytes whenever its output drains to
	// clientLowWater.
	clientQueue    = 8192
	clientChunk    = 1024
	clientLowWater = clientQueue / 2
)

// clientSendBuffer is the clients' socket send buffer (SO_SNDBUF). Left to
// the kernel's auto-tuning it grows to megabytes (tcp_wmem), and filling
// thirty of those takes a burst of CPU that, under the race detector,
// lasts seconds and delays the very goroutines being measured.
const clientSendBuffer = 16 << 10

const (
	// setupTimeout bounds how long the connections may take to come up.
	setupTimeout = 10 * time.Second
	// warmUp is the least time between the connections coming up and the
	// window's start: long enough for the clients to fill their socket
	// buffers (about 100 ms here, with or without the race detector).
	warmUp = 250 * time.Millisecond
)

// result is what one run measured.
type result struct {
	received []int64       // bytes each client received in the window
	window   time.Duration // the window's length, the rates' divisor
	ticks    int64         // the window's length in ticks
	tick     time.Duration
	libevent bool // counted from start-up, as test-ratelim does
	// late is how long after its due time each edge's snapshot was
	// taken, and skipped how many disturbed edges were passed over.
	late    [2]time.Duration
	skipped int
	stalled time.Duration // the worst stall of the process in the window
	// unsettled reports whether an edge was taken although not settled.
	unsettled bool
	// lateLeases counts, with -group-redis, the leases from Redis in the
	// window that came late or failed.
	lateLeases uint64
	// groupRead and groupWritten are the group's totals over the
	// window; grouped reports whether there was a group.
	groupRead, groupWritten int64
	grouped                 bool
}

// client is what one client connection has received.
type client struct {
	received atomic.Int64
}

// measure sets up the echo server and the clients, waits for every
// connection, and counts what the clients receive over the window. It
// closes everything it made before it returns.
func measure(o *options) (res *result, err error) {
	base := actor.NewBase()
	var (
		group *limiter.Group
		drain *drainer
		watch *stallWatch
	)
	defer func() {
		watch.stop()
		drain.stop()
		// Closing the Base closes the listener and every socket, and a
		// closed socket leaves its group; only then may the group close.
		if cerr := base.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
		if group != nil {
			if cerr := group.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("close group: %w", cerr)
			}
		}
	}()

	var connCfg *limiter.Config
	if o.connLimit > 0 {
		if connCfg, err = o.bucketConfig(o.perTick(o.connLimit)); err != nil {
			return nil, err
		}
	}
	// makeGroup makes the group, if there is one, with its min share and
	// its drain. Counted libevent's way, measure makes it once the
	// connections are up, at the start of the window (see startAligned).
	makeGroup := func() error {
		if o.groupLimit <= 0 {
			return nil
		}
		cfg, err := o.bucketConfig(o.perTick(o.groupLimit))
		if err != nil {
			return err
		}
		if group, err = newGroup(o, cfg, base.Clock()); err != nil {
			return err
		}
		if o.minShare >= 0 {
			if err := group.SetMinShare(o.minShare); err != nil {
				return err
			}
		}
		if o.drain != 0 {
			drain = startDrain(group, o.drain, o.tick())
		}
		return nil
	}
	if !o.libeventWindow {
		if err := makeGroup(); err != nil {
			return nil, err
		}
	}

	n := int(o.conns)
	var echoed atomic.Int64      // bytes the echo server has moved to its output
	up := make(chan struct{}, n) // one per connected client
	accepted := make(chan *conn.Socket, n)
	failed := make(chan error, 1) // the first failure; later ones add nothing
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	ln, err := conn.Listen(base, "tcp", "127.0.0.1:0", conn.ListenerConfig{Options: actor.CloseOnFree},
		func(s *conn.Socket) {
			serveEcho(s, &echoed)
			// Counted libevent's way, every server end waits for the
			// others, unlimited and not reading: see startAligned.
			if !o.libeventWindow {
				if err := startServing(s, connCfg, group); err != nil {
					fail(err)
					s.Free()
					return
				}
			}
			select {
			case accepted <- s:
			default: // one too many: nobody dialled it
				s.Free()
			}
		})
	if err != nil {
		return nil, err
	}
	clients := make([]*client, n)
	for i := range clients {
		if clients[i], err = dial(base, ln.Addr().String(), i+1, up, fail); err != nil {
			return nil, err
		}
	}

	timer := time.NewTimer(setupTimeout)
	defer timer.Stop()
	var servers []*conn.Socket
	for ready := 0; ready < 2*n; ready++ {
		select {
		case <-up:
		case s := <-accepted:
			servers = append(servers, s)
		case err := <-failed:
			return nil, err
		case <-timer.C:
			return nil, fmt.Errorf("only %d of %d sockets (server and client ends) were up after %v", ready, 2*n, setupTimeout)
		}
	}

	tick := o.tick()
	var (
		began     time.Time // libevent's clock: where its window starts
		lateStart bool      // a refill came before every server end was serving
	)
	if o.libeventWindow {
		startAligned(tick)
		began = time.Now()
		if err := makeGroup(); err != nil {
			return nil, err
		}
		for _, s := range servers {
			if err := startServing(s, connCfg, group); err != nil {
				return nil, err
			}
		}
		// A stall here let a refill come before the last server end
		// started: it went to the ends serving already.
		lateStart = !time.Now().Before(nextAt(began, tick, 0))
	}

	w := &windower{clients: clients, echoed: &echoed, servers: servers, group: group,
		timer: timer, failed: failed, tick: tick, settle: o.connLimit > 0 || o.groupLimit > 0}
	var probe func()
	if group != nil {
		probe = func() { group.Limit(limiter.Read) }
	}
	watch = startStallWatch(probe)
	var (
		first, last edge
		lateLeases  uint64
	)
	if o.libeventWindow {
		// From start-up, when the limits started, until 5 ms before
		// the duration, divided by the duration, as test-ratelim counts.
		first = edge{due: began, at: began, received: make([]int64, n), disturbed: lateStart}
		end := began.Add(o.duration() - 5*time.Millisecond)
		trouble := leaseTrouble(group)
		if err := sleepUntil(timer, end, failed); err != nil {
			return nil, err
		}
		last = w.snapshot(end)
		lateLeases = leaseTrouble(group) - trouble
		// The window ends 45 ms after its last refill (55 ms before the
		// next, with 100 ms ticks): a snapshot taken late counts the next
		// refill too, and one that finds bytes still on their way or a
		// turn not taken misses part of the last. Either is a stall of
		// the machine at the edge, which test-ratelim does not see.
		last.disturbed = w.settle && (last.at.Sub(end) >= tick/2 || last.inFlight || last.banked)
	} else {
		// Start-up is not steady: the clients fill their connections'
		// socket buffers, and the buckets, idle while the connections
		// came up, hold up to their bursts, which the first turns
		// spend. So the window starts after a warm-up and at least one
		// refill more.
		if first, err = w.edge(nextAt(time.Now().Add(warmUp), tick, 0).Add(tick / 2)); err != nil {
			return nil, err
		}
		watch.reset()
		trouble := leaseTrouble(group)
		if last, err = w.edge(first.due.Add(wholeTicks(o.duration(), tick))); err != nil {
			return nil, err
		}
		lateLeases = leaseTrouble(group) - trouble
	}
	stalled := watch.stalled()
	res = &result{
		libevent:     o.libeventWindow,
		stalled:      stalled,
		window:       last.due.Sub(first.due),
		ticks:        int64(last.due.Sub(first.due) / tick),
		tick:         tick,
		late:         [2]time.Duration{first.at.Sub(first.due), last.at.Sub(last.due)},
		skipped:      first.skipped + last.skipped,
		unsettled:    first.disturbed || last.disturbed,
		lateLeases:   lateLeases,
		received:     last.received,
		grouped:      group != nil,
		groupRead:    last.groupRead - first.groupRead,
		groupWritten: last.groupWritten - first.groupWritten,
	}
	if o.libeventWindow {
		res.window = o.duration()
	}
	for i := range res.received {
		res.received[i] -= first.received[i]
	}
	return res, nil
}

// serveEcho gives an accepted connection test-ratelim's echo server's
// callbacks, which count what it echoes in echoed; startServing then
// limits it and starts it.
func serveEcho(s *conn.Socket, echoed *atomic.Int64) {
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			out := s.Output()
			echoed.Add(int64(s.Input().Len()))
			out.MoveFrom(s.Input())
			if out.Len() > echoStop {
				s.Disable(actor.Read)
			}
		},
		Write: func(s *actor.Session) {
			if s.Output().Len() < echoResume {
				s.Enable(actor.Read)
			}
		},
		Event: func(s *actor.Session, ev actor.Event, _ error) {
			if ev&(actor.EOF|actor.Error) != 0 {
				s.Close()
			}
		},
	})
}

// startServing gives an echo server's end the per-connection limit (if
// cfg is not nil), puts it in the group (if g is not nil) and starts its
// reading and writing, as test-ratelim's echo server does on accept.
func startServing(s *conn.Socket, cfg *limiter.Config, g *limiter.Group) error {
	if cfg != nil {
		if err := s.SetRateLimit(cfg); err != nil {
			return err
		}
	}
	if g != nil {
		if err := s.JoinGroup(g); err != nil {
			return err
		}
	}
	return s.Enable(actor.Read | actor.Write)
}

// dial makes client number i and connects it to addr. Once connected it
// sends up a token, keeps its output full and counts what it receives; a
// connection that fails or ends reports through fail.
func dial(base *actor.Base, addr string, i int, up chan<- struct{}, fail func(error)) (*client, error) {
	s, err := conn.New(base, nil, actor.CloseOnFree)
	if err != nil {
		return nil, err
	}
	c := &client{}
	chunk := make([]byte, clientChunk)
	for j := range chunk {
		chunk[j] = byte(i)
	}
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) {
			in := s.Input()
			n := in.Len()
			in.Drain(n)
			c.received.Add(int64(n))
		},
		Write: func(s *actor.Session) {
			for s.Output().Len() < clientQueue {
				if err := s.Write(chunk); err != nil {
					fail(fmt.Errorf("client %d: write: %w", i, err))
					s.Close()
					return
				}
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			switch {
			case ev&actor.Connected != 0:
				// Start the write callback by hand: nothing has been
				// written yet, so nothing has drained to call it.
				s.Trigger(actor.Write, 0)
				notify(up)
			case ev&(actor.EOF|actor.Error) != 0:
				fail(fmt.Errorf("client %d: %v: %w", i, ev, err))
				s.Close()
			}
		},
	})
	if err := s.SetWatermark(actor.Write, clientLowWater, 0); err != nil {
		return nil, err
	}
	if err := s.Enable(actor.Read | actor.Write); err != nil {
		return nil, err
	}
	dialer := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetWriteBuffer(clientSendBuffer); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if err := s.ConnectWith(context.Background(), dialer); err != nil {
		return nil, err
	}
	return c, nil
}

// notify sends on c without blocking: c has room for every token that is
// expected, so one that does not fit is one too many and is dropped.
func notify(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// nextAt returns the first instant after now that lies offset past a tick
// boundary. Buckets refill when the Unix time crosses a multiple of the
// tick (see package limiter), so this lines events up with the refills.
// (time.Time.Truncate counts from year 1, not from the Unix epoch.)
func nextAt(now time.Time, tick, offset time.Duration) time.Time {
	ns := now.UnixNano()
	t := time.Unix(0, ns-ns%int64(tick)).Add(offset)
	if !t.After(now) {
		t = t.Add(tick)
	}
	return t
}

// drainer takes bytes from a group's buckets once per tick, as
// test-ratelim's -G does.
type drainer struct {
	quit chan struct{}
	done chan struct{} // closed when loop has returned
}

func startDrain(g *limiter.Group, n int64, tick time.Duration) *drainer {
	d := &drainer{quit: make(chan struct{}), done: make(chan struct{})}
	go d.loop(g, n, tick)
	return d
}

// loop drains a quarter of the way into every tick. Any phase gives the
// same rate; this one keeps the drain away from the refills at the
// boundaries and from the window's edges in the middle of a tick, so no
// drain can fall on the other side of either by timer jitter. Instants
// are computed from the first, not from when the timer fired, so a late
// wake-up delays one drain but loses none.
func (d *drainer) loop(g *limiter.Group, n int64, tick time.Duration) {
	defer close(d.done)
	next := nextAt(time.Now(), tick, tick/4)
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-d.quit:
			return
		}
		g.Decrement(limiter.Read, n)
		g.Decrement(limiter.Write, n)
		next = next.Add(tick)
		timer.Reset(time.Until(next))
	}
}

// stop ends the loop and waits for it. A nil drainer does nothing.
func (d *drainer) stop() {
	if d == nil {
		return
	}
	close(d.quit)
	<-d.done
}
