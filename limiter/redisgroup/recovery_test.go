package redisgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bevgo/bev/limiter"
)

// fakeRedis answers a store's client over net.Pipe connections, inside a
// synctest bubble, so that an outage and its end happen at instants of
// virtual time: its script runs answer a lease of the tick of the
// bubble's clock. While down it refuses dials (a Redis whose process
// died) or, blackholed, lets dials and commands hang until the caller's
// deadline (a Redis behind a dead network).
type fakeRedis struct {
	tick time.Duration
	wg   sync.WaitGroup

	mu       sync.Mutex
	up, hole bool
	conns    []net.Conn
	leases   []time.Time // when each lease was answered
}

var errRefused = errors.New("fake redis: connection refused")

func (f *fakeRedis) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	f.mu.Lock()
	if !f.up {
		hole := f.hole
		f.mu.Unlock()
		if hole {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, errRefused
	}
	defer f.mu.Unlock()
	c, srv := net.Pipe()
	f.conns = append(f.conns, srv)
	f.wg.Go(func() { f.serve(srv) })
	return c, nil
}

// down makes Redis unreachable: its connections are cut (refused) or go
// silent (blackholed).
func (f *fakeRedis) down(hole bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up, f.hole = false, hole
	if !hole {
		for _, c := range f.conns {
			c.Close()
		}
		f.conns = nil
	}
}

func (f *fakeRedis) setUp() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = true
}

// close cuts every connection and waits for their goroutines.
func (f *fakeRedis) close() {
	f.down(false)
	f.wg.Wait()
}

// firstLeaseAfter returns when the first lease at or after t was
// answered, or false.
func (f *fakeRedis) firstLeaseAfter(t time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.leases {
		if !l.Before(t) {
			return l, true
		}
	}
	return time.Time{}, false
}

// serve reads RESP commands from c and answers them: HELLO with an error
// (the client goes on in RESP2), a script run with a lease, anything
// else with OK. While blackholed it reads and answers nothing.
func (f *fakeRedis) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		f.mu.Lock()
		up := f.up
		f.mu.Unlock()
		if !up {
			continue
		}
		var reply string
		switch strings.ToUpper(args[0]) {
		case "HELLO":
			reply = "-ERR unknown command 'HELLO'\r\n"
		case "PING":
			reply = "+PONG\r\n"
		case "EVALSHA", "EVAL":
			reply = f.lease(args)
		default:
			reply = "+OK\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// lease answers a script run (EVALSHA sha 2 key key ARGV...) as the
// script does, with the whole rate and the bubble's clock.
func (f *fakeRedis) lease(args []string) string {
	now := time.Now()
	tick := now.UnixMicro() / f.tick.Microseconds()
	until := (tick+1)*f.tick.Microseconds() - now.UnixMicro()
	grant := 1000
	if len(args) > 4+13 && args[4+13] == "0" { // ARGV[13], the mode: a lease
		f.mu.Lock()
		f.leases = append(f.leases, now)
		f.mu.Unlock()
	} else {
		grant = 0
	}
	v := []int64{tick, int64(grant), int64(grant), until, 1, 1, 1000, 1000, -1, -1, -1}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(v))
	for _, x := range v {
		fmt.Fprintf(&b, ":%d\r\n", x)
	}
	return b.String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[0] != '*' {
		return nil, fmt.Errorf("fake redis: bad command %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 || n > 64 {
		return nil, fmt.Errorf("fake redis: bad command %q", line)
	}
	args := make([]string, n)
	for i := range args {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil || size < 0 || size > 1<<16 {
			return nil, fmt.Errorf("fake redis: bad argument %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// TestRecoveryTime measures, in virtual time (a synctest bubble, a fake
// Redis on net.Pipe), how long after Redis answers again a store's
// leases come from Redis: at most recoveryBound, whatever the phase of
// the tick Redis returns in and whether the outage refused connections
// or hung them. The outage tests on a real Redis count the failed runs
// after its return instead (at most the one under way), which a
// schedule that spaced its runs further apart would pass: a slow
// machine cannot fool this one, nor stretch it.
func TestRecoveryTime(t *testing.T) {
	const tick = 50 * time.Millisecond
	// Phases over three ticks (a run that hangs until its timeout, 100
	// ms, spans two), each also just after a run began (leaseDelay).
	var phases []time.Duration
	for p := time.Duration(0); p < 3*tick; p += tick / 4 {
		phases = append(phases, p, p+leaseDelay+time.Microsecond)
	}
	for _, hole := range []bool{false, true} {
		for _, phase := range phases {
			name := fmt.Sprintf("refused/%v", phase)
			if hole {
				name = fmt.Sprintf("blackholed/%v", phase)
			}
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					f := &fakeRedis{tick: tick, up: true}
					defer f.close()
					s, err := newStore(Options{URL: "redis://127.0.0.1:6379", Name: "recovery"}, f.dial)
					if err != nil {
						t.Fatal(err)
					}
					cfg, err := limiter.NewConfig(1000, 1000, 1000, 1000, tick)
					if err != nil {
						t.Fatal(err)
					}
					g, err := limiter.NewSharedGroup(cfg, s)
					if err != nil {
						t.Fatal(err)
					}
					defer g.Close()
					time.Sleep(5 * tick)
					f.down(hole)
					// Ten ticks down, ending at phase after a boundary.
					now := time.Now()
					back := now.Truncate(tick).Add(10*tick + phase)
					time.Sleep(back.Sub(now))
					f.setUp()
					time.Sleep(10 * tick)
					st := s.Stats()
					first, ok := f.firstLeaseAfter(back)
					if !ok || !st.Shared || st.Outages != 1 || st.Recoveries != 1 {
						t.Fatalf("10 ticks after Redis returned: stats %+v, a lease since: %v", st, ok)
					}
					// A tick and leaseDelay: retryWait; with runs that hang,
					// the one under way as Redis returns fails first.
					bound := tick + leaseDelay
					if hole {
						bound += s.callTimeout(tick)
					}
					t.Logf("leases from Redis again %v after it returned (bound %v)", first.Sub(back), bound)
					if took := first.Sub(back); took > bound {
						t.Errorf("leases from Redis again %v after it returned, over the bound %v", took, bound)
					}
				})
			})
		}
	}
}
