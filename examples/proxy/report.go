package main

import (
	"fmt"
	"io"
	"time"
)

// greet prints where the proxy listens and, with the embedded upstream,
// the curl commands to try.
func (p *proxy) greet(w io.Writer) {
	addr := p.ln.Addr().String()
	scheme, k := "http", ""
	if p.serverTLS != nil {
		scheme, k = "https", "-k "
	}
	to := p.targetAddr
	switch {
	case p.upstream != nil:
		to += " (the embedded upstream)"
	case p.clientTLS != nil && p.cfg.tlsFilter:
		to += " over TLS (a filter over a socket)"
	case p.clientTLS != nil:
		to += " over TLS"
	}
	fmt.Fprintf(w, "proxy: listening on %s, relaying to %s\n", addr, to)
	if p.upstream != nil {
		u := scheme + "://" + addr
		fmt.Fprintf(w, "proxy: try\n")
		fmt.Fprintf(w, "  curl %s%s/\n", k, u)
		fmt.Fprintf(w, "  curl %s-o /dev/null -w '%%{size_download} bytes in %%{time_total} s\\n' %s/bytes/100MiB\n", k, u)
		fmt.Fprintf(w, "  curl %s--data-binary @/etc/hosts %s/echo\n", k, u)
	}
	if p.statsSrv != nil {
		fmt.Fprintf(w, "proxy: counters at http://%s/debug/vars\n", p.statsSrv.addr)
	}
}

// printTotals prints the counters at exit.
func (p *proxy) printTotals(w io.Writer) {
	s := p.stats
	fmt.Fprintf(w, "proxy: %d connections (%d could not reach the target), %d bytes client→target, %d bytes target→client, %d backpressure pauses, up %v\n",
		s.total.Load(), s.failed.Load(), s.up.Load(), s.down.Load(), s.pauses.Load(), time.Since(s.start).Round(time.Millisecond))
}
