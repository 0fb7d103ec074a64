// Proxy relays every TCP connection it accepts to a target: libevent's
// sample/le-proxy.c, grown up. It is bev's flagship example, and the
// first command to run:
//
//	go run ./examples/proxy
//
// With no -target it starts a small HTTP server of its own on 127.0.0.1
// and prints the curl commands to try through the proxy, such as
//
//	curl http://127.0.0.1:8080/
//	curl -o /dev/null http://127.0.0.1:8080/bytes/100MiB
//
// Point it at anything else with -target host:port (a host name is
// resolved through conn's connect-by-name path, each address tried in
// turn).
//
// # What it shows
//
// Each connection is two socket bufferevents whose read callbacks move
// their input into the other side's output without copying a byte
// (le-proxy's readcb). When one side's output reaches 512 KiB the other
// side stops reading until that output drains to 256 KiB: backpressure
// through watermarks and the write callback, so a slow client holds the
// target back instead of filling memory. When one side ends its stream
// the other is half-closed after its last byte is written, and the other
// direction goes on until it ends too; then both are drained and closed
// (a plain TCP side whose own stream has ended and whose output is
// written is just closed: the FIN of the close says what a half-close
// would, one system call fewer).
// Nothing accepted is lost silently: when the proxy must throw away bytes
// meant for a side (that side failed, or the connection is cut by a
// timeout or the shutdown deadline), it resets that side's connection
// (no close_notify over TLS), so that a truncated stream cannot pass for
// a whole one, and the log says how many bytes were dropped.
//
// With -tls-cert the target is dialed only once the client's TLS
// handshake is done, so that clients stalled in their handshake hold no
// upstream connections; a handshake not done within 10 s
// (tlsconn.DefaultHandshakeTimeout), or -idle-timeout if shorter, is
// ended, even with -idle-timeout 0, so that they do not hold their
// descriptors for good either.
//
// On top of that, each a flag:
//
//   - -tls-upstream speaks TLS to the target (so it needs -target: the
//     embedded upstream speaks plain HTTP), verifying its certificate
//     against the target's host name (which is also the SNI), or against
//     -tls-ca, or not at all with -insecure. -tls-filter does it with a
//     pipeline TLS filter over a plain socket bufferevent instead of a
//     TLS socket (le-proxy's default and its -W, the other way round).
//   - -tls-cert and -tls-key terminate TLS on the listening side.
//   - -rate limits each connection and -group-rate all of them together,
//     in bytes per second each way ("256KiB", "10MB", "65536");
//     -min-share sets the group's smallest turn.
//   - -group-redis redis://HOST:PORT (or rediss:// for TLS) keeps the
//     group's budget in Redis, so that every proxy naming the same
//     -group-name shares -group-rate, fairly by connection;
//     -group-redis-fallback local|block|bounded says what happens while
//     Redis is lost (package limiter/redisgroup): local, the default,
//     grants this proxy its last share for as long; block grants nothing;
//     bounded grants its share for -group-redis-hold DURATION (1s by
//     default), then nothing, while Redis keeps that share for it, so that
//     the proxies together keep -group-rate even when Redis is lost to one
//     of them alone (under local that one's share comes on top); a proxy
//     that dies then leaves its share unused for that long, plus a few
//     ticks. All the proxies of a group should use the same fallback.
//     -group-redis-ca FILE verifies a rediss:// Redis with that PEM
//     file's CA certificates instead of the system roots. A Redis that
//     does not answer at start-up, or whose certificate does not verify,
//     exits 1, naming the URL and why.
//   - -idle-timeout closes a connection that moved nothing either way for
//     that long (it is also what reaps a peer that vanished: the sockets
//     have no TCP keep-alive, as le-proxy's); -connect-timeout bounds
//     reaching the target.
//   - -stats 127.0.0.1:PORT serves live counters as JSON (expvar's format)
//     at /debug/vars: open connections, bytes each way, the group's
//     totals and, with -group-redis, its store's state (group_store:
//     leases, local leases, ticks fenced under bounded, errors, outages
//     and recoveries, members here and in all);
//     and the runtime's profiles at /debug/pprof/ (for go tool pprof).
//   - -api 127.0.0.1:8474 speaks toxiproxy's REST API (api.go): proxies
//     made through it listen, relay and carry toxiproxy's toxics
//     (package pipeline/toxic) on every connection, changed while
//     connections are open; -config FILE makes those of toxiproxy's JSON
//     config at start. A list of proxies (-config, POST /populate) is
//     checked whole before any is made, and undone whole if one of its
//     proxies then cannot listen, so one refused changes nothing: the
//     proxies it would have replaced serve on, their connections open.
//     Nor does a refused POST /proxies/NAME: a proxy moved to an address
//     in use, or restarted for a new upstream and unable to listen
//     again, keeps serving where it was. A toxic in a proxy's "toxics"
//     takes the defaults of POST /proxies/NAME/toxics (downstream,
//     toxicity 1, named TYPE_STREAM).
//     Only loopback clients are served unless -api-allow-remote.
//
// After a load has passed, the proxy gives the memory it no longer needs
// back to the system within about a second (see reclaimer).
//
// Every connection is logged with log/slog on standard error, in one line
// when it closes: the client, the bytes written each way, the bytes
// dropped if any, the duration and the cause; at INFO, or WARN when the
// target could not be reached or bytes were dropped. -log-level DEBUG adds
// a line when it opens and when the target connects; -log-level WARN keeps
// only the failures. INFO and DEBUG lines are written together, at most
// -log-flush (100 ms) after they are made, since one write per line cost
// as much as the rest of the line (-log-flush 0 writes each at once); a
// WARN or ERROR line is written at once, with the lines before it, and
// exiting writes every line. Accept errors the listener retries (running
// out of descriptors, say) are logged at most once a second.
// SIGINT or SIGTERM stops accepting, lets open connections finish for up
// to -drain-timeout (5 s), closes the rest, prints the totals and exits
// 0; a second signal exits at once (130 after SIGINT). Bad flags or an
// unusable address exit 2 with a one-line error.
package main
