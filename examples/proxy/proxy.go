package main

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/pipeline/toxic"
)

// errShutdown is the cause given to connections still open when the
// drain timeout runs out.
var errShutdown = errors.New("shutdown: drain timeout ran out")

// proxy is the running program: one Base owning the listener and every
// socket, the optional embedded upstream, stats server and rate-limit
// group, and the relays of the open connections.
type proxy struct {
	cfg *config
	log *slog.Logger

	base     *actor.Base
	ln       *conn.Listener
	upstream *upstream    // nil with -target
	statsSrv *statsServer // nil without -stats
	mem      *reclaimer   // gives memory back after a load
	stats    *stats

	targetAddr string
	targetHost string
	targetPort int
	serverTLS  *tls.Config     // -tls-cert: terminate TLS on accepted connections
	clientTLS  *tls.Config     // -tls-upstream: speak TLS to the target
	rate       *limiter.Config // -rate, per connection
	group      *limiter.Group  // -group-rate, shared

	onPause func() // for tests: called when a side stops reading for backpressure

	lc conn.ListenerConfig // how the listener hands sockets over: relisten makes another with it

	// staged is the toxic stages toxicStages made for the socket the
	// listener is about to hand to accept (api.go); both run on the
	// listener's goroutine, one after the other.
	staged [2]*toxic.Stage
	// poisoned is the toxic stages of each open client, closed by remove.
	poisoned sync.Map // *actor.Bufferevent -> [2]*toxic.Stage

	wg     sync.WaitGroup // the open relays (relay.track) and so every goroutine they start
	nextID atomic.Uint64

	mu      sync.Mutex // guards following
	open    map[*relay]struct{}
	closing bool
	idle    chan struct{} // closed once closing and open is empty
}

// sideOptions are the options of every bufferevent of a relay: each
// closes its socket, and starts on a stack its relay's callbacks, a
// dial, a TLS handshake and the log line fit in (actor.LargeStack).
const sideOptions = actor.CloseOnFree | actor.LargeStack

// newProxy sets everything up from cfg and starts accepting. On failure
// it undoes what it did and returns an error naming the flag at fault.
func newProxy(cfg *config, log *slog.Logger) (_ *proxy, err error) {
	p := &proxy{
		cfg:   cfg,
		log:   log,
		base:  actor.NewBase(),
		open:  make(map[*relay]struct{}),
		idle:  make(chan struct{}),
		stats: newStats(),
	}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if err := p.setupTLS(); err != nil {
		return nil, err
	}
	if err := p.setupRates(); err != nil {
		return nil, err
	}
	p.targetAddr = cfg.target
	if cfg.target == "" {
		if p.upstream, err = startUpstream(log); err != nil {
			return nil, fmt.Errorf("embedded upstream: %w", err)
		}
		p.targetAddr = p.upstream.addr
	}
	p.mem = startReclaimer(p.stats.open.Load)
	p.targetHost, p.targetPort, _ = splitTarget(p.targetAddr) // checked by parseFlags
	p.lc = conn.ListenerConfig{Options: sideOptions, OnError: newRateLog(log, acceptLogEvery).acceptError}
	if p.serverTLS != nil {
		p.lc.Layer = tlsconn.Server(p.serverTLS)
	} else if cfg.toxics != nil {
		p.lc.Stages = p.toxicStages
	}
	if p.ln, err = conn.Listen(p.base, "tcp", cfg.listen, p.lc, p.accept); err != nil {
		return nil, fmt.Errorf("-listen: %w", err)
	}
	if cfg.stats != "" {
		if p.statsSrv, err = startStats(cfg.stats, p.stats.handler(p)); err != nil {
			return nil, fmt.Errorf("-stats: %w", err)
		}
	}
	return p, nil
}

// relisten listens again on the address of p's listener, closed (by
// the API, to hand its address to another proxy) while p's connections
// went on, and accepts as before. It fails with conn.Listen's error, p's
// listener left closed; it must not run while the old listener is open,
// nor at the same time as anything else that uses p.ln.
func (p *proxy) relisten() error {
	ln, err := conn.Listen(p.base, "tcp", p.ln.Addr().String(), p.lc, p.accept)
	if err != nil {
		return err
	}
	p.ln = ln
	return nil
}

// setupRates turns -rate, -group-rate and -min-share into a bucket config
// and a group.
func (p *proxy) setupRates() error {
	var err error
	if p.cfg.rate > 0 {
		if p.rate, err = rateConfig(int64(p.cfg.rate)); err != nil {
			return fmt.Errorf("-rate: %w", err)
		}
	}
	if p.cfg.groupRate > 0 {
		gc, err := rateConfig(int64(p.cfg.groupRate))
		if err != nil {
			return fmt.Errorf("-group-rate: %w", err)
		}
		if p.group, err = p.newGroup(gc); err != nil {
			return err
		}
		if p.cfg.minShare > 0 {
			if err := p.group.SetMinShare(int64(p.cfg.minShare)); err != nil {
				return fmt.Errorf("-min-share: %w", err)
			}
		}
	}
	return nil
}

// rateConfig is a token bucket for bytesPerSec each way. Its tick is a
// tenth of a second, with a tenth of the rate per tick and a burst of one
// tick, so that a transfer runs smoothly at the rate from its first byte
// instead of moving a whole second's worth at once, as a one-second tick
// starting full would. Rates below 1000 B/s keep libevent's one-second
// tick, since a tenth of them would not be exact.
func rateConfig(bytesPerSec int64) (*limiter.Config, error) {
	tick, perTick := time.Second, bytesPerSec
	if bytesPerSec >= 1000 {
		// Rounded without adding first: near MaxInt64 the sum overflows.
		tick, perTick = 100*time.Millisecond, bytesPerSec/10+(bytesPerSec%10+5)/10
	}
	return limiter.NewConfig(perTick, perTick, perTick, perTick, tick)
}

// accept starts relaying one accepted connection. It runs on the
// listener's goroutine, so it only starts things. A plain client's target
// is dialed at once; a TLS client's once its handshake is done
// (onHandshake), so that stalled handshakes hold no upstream connections.
func (p *proxy) accept(cs *conn.Socket) {
	if p.cfg.toxics != nil {
		p.claimStages(cs)
	}
	r := newRelay(p, p.nextID.Add(1))
	r.client.b = cs.Bufferevent
	r.client.staged = p.cfg.toxics != nil
	if !p.add(r) {
		p.unpoison(cs.Bufferevent)
		cs.Close() // shutting down: the listener is about to stop
		r.cancel(nil)
		return
	}
	r.track()
	if c := cs.Conn(); c != nil {
		r.remote = c.RemoteAddr()
	}
	t := tlsconn.Of(cs)
	handshaking := t != nil && t.State() != tlsconn.Open
	if handshaking {
		r.handshaking = func() bool { return t.State() != tlsconn.Open }
		// The callbacks first: the handshake's outcome, the Connected
		// event that dials the target, must find them.
		cs.SetCallbacks(r.callbacks(&r.client, false))
	}
	if r.logs(slog.LevelDebug) {
		r.logAt(slog.LevelDebug, "opened", slog.String("client", addrString(r.remote)), slog.Bool("tls", t != nil))
	}
	// An abort (cannot happen with a checked config) waits until both
	// sides are set up, then closes both.
	failed := p.limit(cs)
	r.setup(&r.client, false)
	if handshaking {
		cs.Enable(actor.Read | actor.Write)
	} else {
		started := false
		startClient := func() {
			started = true
			p.poison(cs, r) // now that the target is made: a toxic may end it
			r.startSide(&r.client, cs)
		}
		if err := r.dialTarget(startClient); err != nil {
			r.connFail.Store(true)
			p.stats.failed.Add(1)
			failed = cmp.Or(failed, err)
		}
		if !started {
			startClient()
		}
	}
	if failed != nil {
		r.abort(failed)
	}
}

// limit puts the client socket under -rate and into the -group-rate
// group. Limiting the client side limits both directions: uploads as the
// client is read, downloads as it is written to, and the target side
// follows through backpressure.
func (p *proxy) limit(cs *conn.Socket) error {
	if p.rate != nil {
		if err := cs.SetRateLimit(p.rate); err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
	}
	if p.group != nil {
		if err := cs.JoinGroup(p.group); err != nil {
			return fmt.Errorf("rate-limit group: %w", err)
		}
	}
	return nil
}

// add registers a relay; it reports false once shutdown has begun.
func (p *proxy) add(r *relay) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return false
	}
	p.open[r] = struct{}{}
	p.stats.open.Add(1)
	p.stats.total.Add(1)
	return true
}

// remove unregisters a relay whose sides are closed.
func (p *proxy) remove(r *relay) {
	p.unpoison(r.client.b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.open[r]; !ok {
		return
	}
	delete(p.open, r)
	p.stats.open.Add(-1)
	if p.closing && len(p.open) == 0 {
		close(p.idle)
	}
}

// kill aborts every open relay with cause (a forced shutdown), and any
// relay accepted from now on is refused.
func (p *proxy) kill(cause error) {
	p.mu.Lock()
	p.closing = true
	open := make([]*relay, 0, len(p.open))
	for r := range p.open {
		open = append(open, r)
	}
	p.mu.Unlock()
	for _, r := range open {
		r.abort(cause)
	}
}

// shutdown stops accepting, lets open connections finish for up to the
// drain timeout, closes what is left, and releases everything.
func (p *proxy) shutdown(cause error) {
	p.ln.Close()
	p.mu.Lock()
	p.closing = true
	n := len(p.open)
	if n == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
	p.log.Info("shutting down", "cause", cause, "open", n, "drain_timeout", p.cfg.drainTimeout)
	t := time.NewTimer(p.cfg.drainTimeout)
	select {
	case <-p.idle:
	case <-t.C:
		p.kill(errShutdown)
	}
	t.Stop()
	p.wg.Wait()
	p.close()
}

// close releases everything newProxy made.
func (p *proxy) close() {
	if p.ln != nil {
		p.ln.Close() // no accept runs while kill aborts the relays
	}
	p.kill(errShutdown)
	p.wg.Wait()
	p.base.Close() // the listener and every socket
	if p.group != nil {
		p.group.Close()
	}
	if p.statsSrv != nil {
		p.statsSrv.close()
	}
	if p.upstream != nil {
		p.upstream.close()
	}
	if p.mem != nil {
		p.mem.close()
	}
}
