package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/bevgo/bev/actor"
)

// ConnectHostname resolves host and connects the socket to port on the
// addresses found (libevent's bufferevent_socket_connect_hostname). The
// network is "tcp" (IPv4 and IPv6, libevent's AF_UNSPEC), "tcp4" or
// "tcp6"; host is a name, an IPv4 or IPv6 literal (no lookup then), or
// "[IPv6]". The lookup goes through r, or net.DefaultResolver when r is
// nil, and runs with the dial on a goroutine the socket owns (as
// ConnectAddr's dial does), so Close or the end of ctx cancels it.
//
// Unlike libevent, which tries only the first address, the addresses are
// tried in the order the resolver returns them until one connects, so a
// name that resolves to an unreachable IPv6 address and a reachable IPv4
// one still connects.
//
// The socket then reports exactly one event, as ConnectAddr does:
// actor.Connected, or actor.Error with the cause. A failed lookup is kept
// and DNSError returns it (a name that does not exist gives a
// *net.DNSError whose IsNotFound is true); every ConnectHostname clears
// it first. On a layered socket host is also the server name the
// layer's handshake gets (TLS verifies it unless its configuration names
// another).
//
// ConnectHostname returns at once. It fails, with no event, with an error
// wrapping ErrNetwork or ErrPort (and actor.ErrInvalid) for a bad network
// or port, actor.ErrInvalid for an empty host, and otherwise as
// ConnectAddr.
func (s *Socket) ConnectHostname(ctx context.Context, r *net.Resolver, network, host string, port int) error {
	var ipNet string
	switch network {
	case "tcp":
		ipNet = "ip"
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	default:
		return fmt.Errorf("%w: connect %q: %w", ErrNetwork, network, actor.ErrInvalid)
	}
	if port < 1 || port > 65535 {
		return fmt.Errorf("%w: connect port %d: %w", ErrPort, port, actor.ErrInvalid)
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if host == "" {
		return fmt.Errorf("conn: connect: %w: empty host", actor.ErrInvalid)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	s.setDNSError(nil)
	if a, err := netip.ParseAddr(host); err == nil && fits(network, a) {
		// A literal needs no lookup: dial it as it is, without going
		// through the resolver and back through a string.
		return s.connect(ctx, host, true, func(ctx context.Context) (net.Conn, error) {
			return dialEach(ctx, network, []netip.Addr{a}, port)
		})
	}
	return s.connect(ctx, host, true, func(ctx context.Context) (net.Conn, error) {
		addrs, err := r.LookupNetIP(ctx, ipNet, host)
		if err != nil {
			s.setDNSError(dnsError(host, err))
			return nil, fmt.Errorf("conn: lookup %s: %w", host, err)
		}
		return dialEach(ctx, network, addrs, port)
	})
}

// dnsError returns err as a *net.DNSError, wrapping it in one when the
// resolver gave something else (a context error, say).
func dnsError(host string, err error) *net.DNSError {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de
	}
	return &net.DNSError{Err: err.Error(), Name: host, UnwrapErr: err}
}

// fits reports whether the IP literal a may be dialed on network as it
// is; one that may not (an IPv6 literal on "tcp4") goes to the resolver,
// which reports why not.
func fits(network string, a netip.Addr) bool {
	a = a.Unmap()
	switch network {
	case "tcp4":
		return a.Is4()
	case "tcp6":
		return a.Is6()
	}
	return true
}

// dialEach dials the addresses in order, with TCP keep-alive off (see
// keepalive.go), and returns the first connection made, or every failure
// joined.
func dialEach(ctx context.Context, network string, addrs []netip.Addr, port int) (net.Conn, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("conn: no addresses to connect to")
	}
	d := noKeepAlive
	var errs []error
	for _, a := range addrs {
		// Not d.DialTCP with a netip.AddrPort: given no local address,
		// it binds the socket to the wildcard address before connecting,
		// one system call more and an ephemeral port no other
		// destination may share.
		addr := net.JoinHostPort(a.Unmap().String(), strconv.Itoa(port))
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}
