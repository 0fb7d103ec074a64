// Package redisgroup keeps a [limiter.Group]'s budget in Redis, so that
// any number of bev processes, on any number of hosts, share one group.
//
// A process makes its group with [NewGroup] (or [New] and
// limiter.NewSharedGroup) and uses it like any other: its members join,
// wait for turns and consume. Just after each tick boundary of Redis's
// own clock, the [Store] runs one Lua script in Redis that refills the
// group's bucket by whole ticks (from Redis's TIME, never the processes'
// clocks), settles this process's last lease, records how many members
// it has and how many of them want bytes (with an expiry, so that a
// process that died stops counting within a few ticks, or, under
// [Bounded], after its hold), and grants it its share of what the tick
// holds: by member, among the processes whose members are active. The
// process then serves its own members from that lease, round robin, as
// an in-process group does. Within the tick, a
// process whose members do not want the rest of their lease gives it
// back, and one whose members want more asks for what the others left.
// There is no round trip per read: at most three script runs per tick
// and process, whatever the number of connections.
//
// The script is the single point of truth: its grants come off the
// bucket, and a tick's grants never add up to more than one bucket of the
// group's config. Keys carry a hash tag ("bev:{NAME}:bucket",
// "bev:{NAME}:procs") so that the group works on Redis Cluster.
// docs/design.md says what a lease guarantees.
//
// # Failures
//
// [New] fails with an error wrapping [ErrUnreachable], naming the URL
// (its password hidden), when Redis does not answer. A Redis lost while
// the group runs (a script run that fails, times out, or answers what
// the script never does, an error wrapping [ErrReply]) is an outage: the store keeps trying once a tick, and
// meanwhile applies its [Policy]: [Local] (the default) grants each tick
// this process's share of the budget over the last ticks (by what Redis
// granted it), from the local clock; [Block] grants nothing, so members
// wait; [Bounded] grants that share for at most [Options.Hold], then
// nothing, while Redis keeps the share for this process. When Redis is
// lost to all the group's processes, Local and Bounded keep the budget;
// when it is lost to one alone, only Bounded does: under Local that
// process's share comes on top of what Redis grants the others, for as
// long as the partition lasts. Bounded's price is under-use: a process
// that dies or is cut off leaves its share unused for its hold and a few
// ticks more. Either way no connection is closed and no byte is lost:
// members only wait. There is no backoff: the store asks again at the
// next tick boundary of the local clock after each failed run, so shared
// leases resume within a tick (plus 1 ms) of Redis's return when the runs
// failed at once (connections refused), and within that plus the call
// timeout ([Options.Timeout]) when they hung until it (a network that
// drops packets), plus the successful run's round trip. [Store.Stats]
// counts the outages, recoveries and errors.
package redisgroup

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/bevgo/bev/limiter"
	"github.com/redis/go-redis/v9"
)

// Sentinel errors; every error the package returns wraps one of these, or
// limiter's, with %w.
var (
	// ErrUnreachable is wrapped by the error New returns when Redis does
	// not answer, together with the client's error.
	ErrUnreachable = errors.New("redisgroup: redis unreachable")
	// ErrInvalid is wrapped by errors about bad options: a bad URL, an
	// empty group name, an unknown policy.
	ErrInvalid = errors.New("redisgroup: invalid option")
	// ErrStarted is wrapped by the error Start returns when the store
	// already serves a group.
	ErrStarted = errors.New("redisgroup: store already started")
	// ErrReply is wrapped by the error of a script run whose reply is
	// not one the lease script gives (see Stats.LastError): the run counts
	// as failed, as one Redis did not answer.
	ErrReply = errors.New("redisgroup: malformed script reply")
)

// Policy is what a process does while Redis is lost.
type Policy int

const (
	// Local grants, at every tick of the local clock, this process's
	// last known share of the group's budget, what Redis granted it of
	// the last ticks' budgets. When Redis is lost to all the group's
	// processes, their shares add up to at most one, whatever tick each
	// lost it in: together they stay within the budget, and near it
	// when they were busy and their shares steady. A process that had
	// no share in either of the two ticks before its last lease (idle,
	// or new) gets nothing until Redis is back. A process that alone
	// loses Redis keeps its share while Redis grants the others theirs,
	// and, three ticks later, its own too: the group may then pass its
	// budget by that share, for as long as the partition lasts
	// ([Bounded] keeps it).
	Local Policy = iota
	// Block grants nothing: members wait until Redis is back.
	Block
	// Bounded grants, like Local, this process's last known share at
	// every tick of the local clock, but for at most [Options.Hold]
	// (L ticks) after its last lease from Redis; then nothing, as
	// Block, until Redis is back ([Stats].Fenced counts those ticks).
	// Redis keeps that share for it meanwhile: with each lease the
	// process registers its hold (the share it would grant itself,
	// which caps its local leases; none in a direction its members are
	// idle in) and an expiry of L plus a margin of
	// a few ticks; in each tick until then that it does not ask in, the
	// others' leases and top-ups leave it its hold (or its share by
	// weight, if more), which counts as granted when the tick ends. So
	// the group keeps its budget both when Redis is lost to all its
	// processes (their shares add up to at most one, as under Local)
	// and when it is lost to one alone: a partition costs the others
	// that process's share for L + margin ticks, never more than the
	// budget. The trade: a longer hold rides out longer outages at the
	// process's share; a process that dies, or is cut off, leaves its
	// share unused for L + margin ticks. (A store closed cleanly removes
	// its entry at once.) All the group's processes should use it: one
	// under Local or Block registers no hold, and a three-tick expiry.
	Bounded
)

// String returns "local", "block" or "bounded".
func (p Policy) String() string {
	switch p {
	case Local:
		return "local"
	case Block:
		return "block"
	case Bounded:
		return "bounded"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy returns the Policy named s ("local", "block" or
// "bounded"), or an error wrapping [ErrInvalid].
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "local":
		return Local, nil
	case "block":
		return Block, nil
	case "bounded":
		return Bounded, nil
	}
	return 0, fmt.Errorf("%w: fallback %q is not local, block or bounded", ErrInvalid, s)
}

// Options configure a [Store].
type Options struct {
	// URL is Redis's address, redis://[user:password@]host:port[/db]
	// or rediss:// for TLS, as redis.ParseURL reads it.
	URL string
	// Name names the group: processes that give the same Name (and
	// URL) share one budget. It must not be empty.
	Name string
	// Fallback is the policy while Redis is lost; the zero value is
	// Local.
	Fallback Policy
	// Hold is, under Bounded, how long after its last lease from Redis
	// a process that lost Redis grants itself its share, rounded to
	// the nearest whole tick, at least one; 0 means [DefaultHold].
	// Longer rides out longer outages; a process that dies holds its
	// share unused for as long, plus a few ticks (see Bounded). Other
	// policies ignore it. Negative is invalid.
	Hold time.Duration
	// ID names this process in Redis; empty picks the host name, the
	// process id and a random suffix.
	ID string
	// TLS, for a rediss:// URL, replaces the default TLS configuration
	// (the system's roots, the URL's host as the server name).
	TLS *tls.Config
	// Timeout bounds connecting and each script run; 0 means one
	// second at connection and half a tick (at least 100 ms)
	// afterwards. A run that takes longer counts as an outage.
	Timeout time.Duration
}

// Stats is a snapshot of a [Store].
type Stats struct {
	// Shared is true while leases come from Redis, false during an
	// outage.
	Shared bool
	// Policy is the fallback policy.
	Policy Policy
	// Leases counts the tick leases granted from Redis, TopUps the
	// mid-tick top-ups, GiveBacks the mid-tick returns of what members
	// here would not use, and LocalLeases the ticks granted by the
	// fallback policy.
	Leases, TopUps, GiveBacks, LocalLeases uint64
	// Calls counts script runs, Errors the failed ones.
	Calls, Errors uint64
	// Late counts tick leases from Redis that came more than a quarter
	// of a tick after their tick began (by Redis's clock): the members
	// here had less than the tick to use them.
	Late uint64
	// Missed counts the ticks of Redis's clock in which this process
	// had no lease from Redis, between two that it had (its runs
	// failed, or its machine held it back past a tick), and, at an
	// outage's first failed lease, the tick boundaries beyond the next
	// that may have passed since its last one: ticks its share of the
	// budget counts as granting it nothing (see [Local]).
	Missed uint64
	// Fenced counts, under Bounded, the failed ticks in which the
	// fence stopped local grants: the hold had run out, and members
	// waited.
	Fenced uint64
	// Outages counts the times Redis was lost, Recoveries the times it
	// came back.
	Outages, Recoveries uint64
	// MembersHere is this process's members at the last lease, and
	// MembersTotal and Processes the members and live processes of the
	// whole group, as the last lease saw them.
	MembersHere, MembersTotal, Processes int
	// Last is the last lease granted, from Redis or the fallback.
	Last limiter.Lease
	// LastError is the last error, empty if there was none.
	LastError string
}

// A Store keeps a [limiter.Group]'s budget in Redis; it implements
// [limiter.Store]. It serves one group: give it to
// limiter.NewSharedGroup once.
type Store struct {
	opts   *redis.Options
	client *redis.Client // used by loop only, until Close
	// dial, nil but in tests, replaces the dialer of opts's network and
	// TLS; stopDials ends the dials of client (newClient).
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	stopDials context.CancelFunc
	url       string // redacted
	keys      []string
	id        string
	policy    Policy
	hold      time.Duration // Options.Hold
	timeout   time.Duration

	quit chan struct{}
	done chan struct{} // closed when loop has returned

	// now is the local clock (time.Now), for the fallback's leases and
	// the outage's start; redisNow, nil but in tests, replaces Redis's
	// TIME in the script (microseconds since the epoch). Tests set both
	// to one clock they advance by hand.
	now      func() time.Time
	redisNow func() int64

	mu    sync.Mutex // guards following
	g     *limiter.Group
	stats Stats
	// share is, per direction, the process's share of the budget by
	// what Redis granted it, a moving average over about five ticks, up
	// to the tick before that of its last lease from Redis (last; -1
	// before the first), and prev the same a tick earlier: the Local
	// policy's basis (see foldLocked and fallLocked). boundary is the
	// earliest the tick after last can have begun, by the local clock.
	share, prev [2]float64
	last        int64
	boundary    time.Time
	// falling is true from the first failed lease of an outage to the
	// next lease from Redis; local is the process's share meanwhile.
	falling bool
	local   [2]float64
	// Under Bounded: sent is when the last lease from Redis was sent,
	// by the local clock, claim the hold registered with it, and locals
	// the local leases granted since (the fence: see lease).
	sent   time.Time
	claim  [2]int64
	locals int64
	closed bool
}

// New connects to the Redis at o.URL and returns a Store for the group
// o.Name. It checks that Redis answers (PING) within o.Timeout. A bad
// option gives an error wrapping [ErrInvalid]; a Redis that does not
// answer one wrapping [ErrUnreachable] and naming the URL (without its
// password) and the client's error.
func New(o Options) (*Store, error) {
	return newStore(o, nil)
}

// newStore is New, with dial, if not nil, as the client's dialer (tests
// serve a fake Redis through it).
func newStore(o Options, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*Store, error) {
	if o.Name == "" {
		return nil, fmt.Errorf("%w: empty group name", ErrInvalid)
	}
	if o.Fallback != Local && o.Fallback != Block && o.Fallback != Bounded {
		return nil, fmt.Errorf("%w: policy %v", ErrInvalid, o.Fallback)
	}
	if o.Hold < 0 {
		return nil, fmt.Errorf("%w: negative hold %v", ErrInvalid, o.Hold)
	}
	if o.Hold == 0 {
		o.Hold = DefaultHold
	}
	shown := redact(o.URL)
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: url %s: %w", ErrInvalid, shown, err)
	}
	if o.TLS != nil && opts.TLSConfig != nil {
		opts.TLSConfig = o.TLS.Clone()
	}
	// The store retries once a tick itself; the client must not hold a
	// tick's script run back with retries of its own.
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.PoolSize = 2
	opts.DisableIdentity = true
	opts.ContextTimeoutEnabled = true
	if o.ID == "" {
		o.ID = processID()
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	opts.DialTimeout = timeout
	tag := "bev:{" + o.Name + "}:"
	s := &Store{
		opts:    opts,
		dial:    dial,
		url:     shown,
		keys:    []string{tag + "bucket", tag + "procs"},
		id:      o.ID,
		policy:  o.Fallback,
		hold:    o.Hold,
		timeout: o.Timeout,
		now:     time.Now,
		last:    -1,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		stats:   Stats{Shared: true, Policy: o.Fallback},
	}
	s.client = s.newClient()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		s.closeClient()
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, shown, err)
	}
	return s, nil
}

// NewGroup returns a group limited by cfg whose budget is kept in Redis
// by a new Store (see [New]), and the store, for its stats. Closing the
// group closes the store. Errors are New's and limiter.NewSharedGroup's.
func NewGroup(cfg *limiter.Config, o Options) (*limiter.Group, *Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	s, err := New(o)
	if err != nil {
		return nil, nil, err
	}
	g, err := limiter.NewSharedGroup(cfg, s)
	if err != nil {
		s.closeClient()
		return nil, nil, err
	}
	return g, s, nil
}

// URL returns the store's Redis URL, without its password.
func (s *Store) URL() string { return s.url }

// ID returns the name of this process in Redis.
func (s *Store) ID() string { return s.id }

// Hold returns how long, under [Bounded], this process grants itself its
// share after its last lease from Redis: [Options.Hold], or [DefaultHold]
// when that was 0. Other policies do not use it.
func (s *Store) Hold() time.Duration { return s.hold }

// Start asks Redis for g's first lease, which makes the group's bucket in
// Redis if it is new (empty, at the tick of Redis's clock now), then
// grants g a lease at every tick from a goroutine of its own; it is
// limiter.Store's Start, called by limiter.NewSharedGroup. The first
// lease is asked before Start returns, so a group is counted in Redis
// from the tick it was made in, however late the goroutine runs. (If
// Redis fails it, the policy applies, as in any tick.) A second call
// gives an error wrapping [ErrStarted], and one after Close one wrapping
// limiter.ErrClosed.
func (s *Store) Start(g *limiter.Group) error {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("redisgroup: start: %w", limiter.ErrClosed)
	case s.g != nil:
		s.mu.Unlock()
		return ErrStarted
	}
	s.g = g
	s.mu.Unlock()
	cfg := g.Config()
	untilNext, _ := s.lease(cfg, tickOf(cfg))
	go s.loop(untilNext + leaseDelay)
	return nil
}

// Renew is limiter.Store's Renew: it returns false, since the store
// grants each lease from its goroutine with Group.Grant, when Redis's
// clock enters the tick.
func (s *Store) Renew(time.Time, *limiter.Config, [2]int64) (limiter.Lease, bool) {
	return limiter.Lease{}, false
}

// Close stops the grants, waits for the store's goroutine and closes the
// Redis client, whose goroutines are joined then. Under [Bounded] it
// first removes this process's entry from Redis, so that its share is
// not kept for it for its hold (best effort, within a script run's
// timeout: if Redis does not answer, the entry expires). It returns the
// client's error, if any; later calls return nil. Group.Close calls it.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	started := s.g != nil
	s.mu.Unlock()
	close(s.quit)
	if started {
		<-s.done
		if s.policy == Bounded {
			ctx, cancel := context.WithTimeout(context.Background(), s.callTimeout(tickOf(s.g.Config())))
			s.client.HDel(ctx, s.keys[1], s.id)
			cancel()
		}
	}
	if err := s.closeClient(); err != nil {
		return fmt.Errorf("redisgroup: close: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the store.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// redact returns raw with any password hidden.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func processID() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
