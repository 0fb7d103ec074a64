package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/bevgo/bev/limiter/redisgroup"
	"github.com/bevgo/bev/pipeline/toxic"
)

// config is the proxy's command line, checked.
type config struct {
	listen string // host:port to accept on
	target string // host:port to relay to; empty: start the embedded upstream

	tlsUpstream bool   // speak TLS to the target
	tlsFilter   bool   // as a pipeline TLS filter over a plain socket, not a TLS socket
	insecure    bool   // do not verify the target's certificate
	tlsCA       string // PEM file of roots to verify the target with
	tlsCert     string // PEM certificate: terminate TLS on the listening side
	tlsKey      string // and its key

	rate, groupRate, minShare byteSize // bytes per second; 0: no limit

	groupRedis, groupName, groupFallback string            // -group-redis: the group's budget in Redis
	groupRedisCA                         string            // PEM file of roots to verify a rediss:// Redis with
	groupHold                            time.Duration     // -group-redis-hold: Bounded's hold; 0: its default
	groupPolicy                          redisgroup.Policy // groupFallback parsed by check (Local when empty)

	idleTimeout    time.Duration
	connectTimeout time.Duration
	drainTimeout   time.Duration

	stats string // host:port of the JSON counters; empty: none

	logLevel slog.Level    // the least level logged
	logFlush time.Duration // how long an INFO or DEBUG line may wait to be written (logWriter)

	api            string     // host:port of toxiproxy's REST API; empty: none (api.go)
	apiAllowRemote bool       // serve the API to clients off loopback
	toxiConfig     string     // toxiproxy JSON config of proxies to make at start
	toxics         *toxic.Set // an API proxy's toxics, on every client; nil: none
}

// errHelp is returned by parseFlags for -h and -help: print the usage and
// exit 0.
var errHelp = errors.New("help requested")

// parseFlags reads args (without the program name) into a config. Errors
// are one line each; usage goes to usageOut only for -h.
func parseFlags(args []string, usageOut io.Writer) (*config, error) {
	var c config
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller, in one line
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "`address` to accept connections on (a bare port means 127.0.0.1:port)")
	fs.StringVar(&c.target, "target", "", "`host:port` to relay to; empty starts an embedded HTTP upstream on 127.0.0.1")
	fs.BoolVar(&c.tlsUpstream, "tls-upstream", false, "speak TLS to the target (SNI and verification against its host name)")
	fs.BoolVar(&c.tlsFilter, "tls-filter", false, "with -tls-upstream: a TLS filter over a socket bufferevent instead of a TLS socket (le-proxy's -W, inverted)")
	fs.BoolVar(&c.insecure, "insecure", false, "with -tls-upstream: do not verify the target's certificate")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "with -tls-upstream: PEM `file` of CA certificates to verify the target with instead of the system roots")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate `file`: terminate TLS on the listening side (with -tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` of -tls-cert")
	fs.Var(&c.rate, "rate", "per-connection limit in `bytes/s` each way, such as 256KiB, 10MB or 65536 (0: none)")
	fs.Var(&c.groupRate, "group-rate", "limit in `bytes/s` each way shared by all connections together (0: none)")
	fs.Var(&c.minShare, "min-share", "with -group-rate: the least `bytes` a connection may move per turn (default 64)")
	fs.StringVar(&c.groupRedis, "group-redis", "", "with -group-rate: keep the group's budget in the Redis at this `URL` (redis:// or rediss://), shared by every proxy naming the same -group-name")
	fs.StringVar(&c.groupName, "group-name", "", "with -group-redis: the shared group's `name` (default \"proxy\")")
	fs.StringVar(&c.groupFallback, "group-redis-fallback", "", "with -group-redis: while Redis is lost, `local` (this proxy's last share of the budget; the default), block (wait) or bounded (its share for -group-redis-hold, then wait; Redis keeps it meanwhile, so the budget holds even when Redis is lost to this proxy alone)")
	fs.DurationVar(&c.groupHold, "group-redis-hold", 0, "with -group-redis-fallback bounded: how long after its last lease from Redis a proxy that lost Redis grants itself its share (default 1s); a proxy that dies leaves its share unused as long")
	fs.StringVar(&c.groupRedisCA, "group-redis-ca", "", "with a rediss:// -group-redis: PEM `file` of CA certificates to verify Redis with instead of the system roots")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", 5*time.Minute, "close a connection after this long without traffic either way (0: never)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "bound on resolving, connecting to and (with TLS) handshaking with the target")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 5*time.Second, "on SIGINT or SIGTERM, how long open connections may take to finish")
	fs.StringVar(&c.stats, "stats", "", "`address` (such as 127.0.0.1:9090) to serve live counters on as JSON, at /debug/vars")
	fs.StringVar(&c.api, "api", "", "`address` (such as 127.0.0.1:8474) to serve toxiproxy's REST API on: proxies with toxics")
	fs.BoolVar(&c.apiAllowRemote, "api-allow-remote", false, "with -api: serve clients that are not on loopback")
	fs.StringVar(&c.toxiConfig, "config", "", "toxiproxy JSON config `file` of proxies to make at start")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "least `level` logged: DEBUG, INFO (one line per connection), WARN (failures only) or ERROR")
	fs.DurationVar(&c.logFlush, "log-flush", 100*time.Millisecond, "how long an INFO or DEBUG log line may wait to be written with others (0: each line at once); WARN and ERROR lines are written at once, with the lines before them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usageOut, "usage: proxy [flags]\n\nRelays every connection accepted on -listen to -target, zero-copy, with backpressure.\n\nFlags:")
			fs.SetOutput(usageOut)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	return &c, c.check()
}

// check rejects combinations that cannot work and normalises addresses.
func (c *config) check() error {
	var err error
	if c.listen, err = normaliseAddr(c.listen); err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	if c.target != "" {
		if _, _, err := splitTarget(c.target); err != nil {
			return fmt.Errorf("-target: %w", err)
		}
	}
	if c.stats != "" {
		if c.stats, err = normaliseAddr(c.stats); err != nil {
			return fmt.Errorf("-stats: %w", err)
		}
	}
	if c.api != "" {
		if c.api, err = normaliseAddr(c.api); err != nil {
			return fmt.Errorf("-api: %w", err)
		}
	}
	var policyErr error
	if c.groupFallback != "" {
		c.groupPolicy, policyErr = redisgroup.ParsePolicy(c.groupFallback)
	}
	switch {
	case c.tlsFilter && !c.tlsUpstream:
		return errors.New("-tls-filter needs -tls-upstream")
	case c.insecure && !c.tlsUpstream:
		return errors.New("-insecure needs -tls-upstream")
	case c.tlsCA != "" && !c.tlsUpstream:
		return errors.New("-tls-ca needs -tls-upstream")
	case c.insecure && c.tlsCA != "":
		return errors.New("-insecure and -tls-ca contradict each other")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case c.minShare != 0 && c.groupRate == 0:
		return errors.New("-min-share needs -group-rate")
	case c.groupRedis != "" && c.groupRate == 0:
		return errors.New("-group-redis needs -group-rate")
	case (c.groupName != "" || c.groupFallback != "" || c.groupRedisCA != "" || c.groupHold != 0) && c.groupRedis == "":
		return errors.New("-group-name, -group-redis-fallback, -group-redis-hold and -group-redis-ca need -group-redis")
	case c.groupRedisCA != "" && !strings.HasPrefix(c.groupRedis, "rediss://"):
		return errors.New("-group-redis-ca needs a rediss:// -group-redis (TLS)")
	case policyErr != nil:
		return fmt.Errorf("-group-redis-fallback %q: want local, block or bounded", c.groupFallback)
	case c.groupHold < 0:
		return errors.New("-group-redis-hold cannot be negative")
	case c.groupHold != 0 && c.groupPolicy != redisgroup.Bounded:
		return errors.New("-group-redis-hold needs -group-redis-fallback bounded")
	case c.idleTimeout < 0 || c.connectTimeout < 0 || c.drainTimeout < 0:
		return errors.New("timeouts cannot be negative")
	case c.logFlush < 0:
		return errors.New("-log-flush cannot be negative")
	case c.connectTimeout == 0:
		return errors.New("-connect-timeout must be positive")
	case c.tlsUpstream && c.target == "":
		// The embedded upstream speaks plain HTTP: every connection
		// would fail its handshake.
		return errors.New("-tls-upstream needs -target (the embedded upstream speaks plain HTTP)")
	}
	return nil
}

// normaliseAddr accepts host:port, or a bare port meaning 127.0.0.1:port
// as in le-proxy.
func normaliseAddr(a string) (string, error) {
	if p, err := strconv.Atoi(a); err == nil {
		if p < 0 || p > 65535 {
			return "", fmt.Errorf("port %d out of range", p)
		}
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", fmt.Errorf("want host:port or a port: %w", err)
	}
	return a, nil
}

// splitTarget splits a target into a host (a name or an IP literal,
// without brackets) and a port from 1 to 65535.
func splitTarget(t string) (host string, port int, err error) {
	host, ps, err := net.SplitHostPort(t)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port: %w", err)
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return "", 0, fmt.Errorf("bad host in %q", t)
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, port, nil
}
