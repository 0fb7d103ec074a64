package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"expvar"
	"fmt"
	"os"

	"github.com/bevgo/bev/limiter"
	"github.com/bevgo/bev/limiter/redisgroup"
)

// newGroup makes the -group-rate group: in the process (on the clock of
// the proxy's Base, as its sockets' own limits are), or, with
// -group-redis, with its budget in Redis, shared by every proxy naming
// the same -group-name there, verified with -group-redis-ca's roots for a
// rediss:// URL if it is given. Its error names the flag at fault; for a
// Redis that does not answer (or whose certificate does not verify), the
// URL (without its password) and why.
func (p *proxy) newGroup(cfg *limiter.Config) (*limiter.Group, error) {
	if p.cfg.groupRedis == "" {
		g, err := limiter.NewGroup(cfg, limiter.WithClock(p.base.Clock()))
		if err != nil {
			return nil, fmt.Errorf("-group-rate: %w", err)
		}
		return g, nil
	}
	name := p.cfg.groupName
	if name == "" {
		name = "proxy"
	}
	policy := p.cfg.groupPolicy // parsed by config.check
	opts := redisgroup.Options{URL: p.cfg.groupRedis, Name: name, Fallback: policy, Hold: p.cfg.groupHold}
	if ca := p.cfg.groupRedisCA; ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("-group-redis-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-group-redis-ca: no PEM certificate in %s", ca)
		}
		opts.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	g, s, err := redisgroup.NewGroup(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("-group-redis: %w", err)
	}
	args := []any{"url", s.URL(), "group", name, "fallback", policy.String(), "id", s.ID()}
	if policy == redisgroup.Bounded {
		args = append(args, "hold", s.Hold())
	}
	p.log.Info("rate-limit group in Redis", args...)
	return g, nil
}

// storeVars adds, for a group kept in Redis, the store's state to the
// -stats counters as "group_store": whether leases come from Redis now,
// the leases, top-ups, give-backs and local (fallback) leases, the ticks
// Bounded's fence stopped local leases in, script runs and errors,
// outages and recoveries, and the members here and in the whole group.
func storeVars(m *expvar.Map, g *limiter.Group) {
	s, ok := g.Store().(*redisgroup.Store)
	if !ok {
		return
	}
	m.Set("group_store", expvar.Func(func() any {
		st := s.Stats()
		return map[string]any{
			"url":           s.URL(),
			"shared":        st.Shared,
			"fallback":      st.Policy.String(),
			"leases":        st.Leases,
			"top_ups":       st.TopUps,
			"give_backs":    st.GiveBacks,
			"local_leases":  st.LocalLeases,
			"fenced":        st.Fenced,
			"redis_calls":   st.Calls,
			"errors":        st.Errors,
			"outages":       st.Outages,
			"recoveries":    st.Recoveries,
			"members_here":  st.MembersHere,
			"members_total": st.MembersTotal,
			"processes":     st.Processes,
			"last_lease":    map[string]int64{"tick": st.Last.Tick, "read": st.Last.Read, "write": st.Last.Write},
			"last_error":    st.LastError,
		}
	}))
}

// setupStatus is the exit status for an error from newProxy: 1 when
// -group-redis's Redis did not answer (the flags were fine, the world was
// not), 2 otherwise.
func setupStatus(err error) int {
	if errors.Is(err, redisgroup.ErrUnreachable) {
		return 1
	}
	return 2
}
