package conn

import (
	"fmt"
	"net"
	"sync"

	"github.com/bevgo/bev/actor"
)

// Socket is a bufferevent over a net.Conn: libevent's socket bufferevent
// (and, with a Layer such as package conn/tlsconn's TLS, its OpenSSL
// socket bufferevent). It embeds the *actor.Bufferevent, so every
// bufferevent method (SetCallbacks, Enable, Write, In, Out, Flush, Drain,
// Close, …) works on it as documented there; Socket adds the ways to
// connect and what they leave behind: the DNS error of the last lookup,
// and the layer run over the connection.
//
// Connect through ConnectAddr, ConnectHostname or ConnectWith, not the
// embedded Bufferevent.Connect: on a layered socket only those run the
// layer over the new connection. SetTransport and ReplaceTransport
// (libevent's setfd and replacefd) take a net.Conn as they are; on a
// layered (TLS) socket give them a connection that is already layered.
//
// A Socket is safe for concurrent use. Its zero value is not usable; make
// one with New or NewLayered (tlsconn.New for TLS), or get one from a
// Listener.
type Socket struct {
	*actor.Bufferevent

	layer Layer // nil for a plain socket; set before the socket is handed out

	mu     sync.Mutex // guards following
	dnsErr *net.DNSError
}

// New returns a socket bufferevent over c, owned by base (which may be
// nil), with writing enabled and reading disabled (libevent's
// bufferevent_socket_new). c may be nil: connect the socket later with
// ConnectAddr, ConnectHostname or ConnectWith, or give it a connection
// with SetTransport; writes made before then are sent once it has one.
// With actor.CloseOnFree, Close closes c; without it c is left open and
// only the socket's loops stop. New fails as actor.New does: with an
// error wrapping actor.ErrInvalid for bad options and actor.ErrClosed
// when base is closed; c is not closed then.
func New(base *actor.Base, c net.Conn, opts actor.Option) (*Socket, error) {
	var t actor.Transport
	if c != nil {
		t = c
	}
	b, err := actor.New(base, t, opts)
	if err != nil {
		return nil, fmt.Errorf("conn: new socket: %w", err)
	}
	return &Socket{Bufferevent: b}, nil
}

// DNSError returns the error of the last host-name lookup ConnectHostname
// made (libevent's bufferevent_socket_get_dns_error): nil when the lookup
// succeeded, was not needed (an IP literal), or none was made. A name
// that does not exist gives an error whose IsNotFound is true. A lookup
// cut short by Close or by the connect's context leaves an error with the
// context's cause. Errors from connecting after a successful lookup are
// not DNS errors: they come with the Error event.
func (s *Socket) DNSError() *net.DNSError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dnsErr
}

func (s *Socket) setDNSError(err *net.DNSError) {
	s.mu.Lock()
	s.dnsErr = err
	s.mu.Unlock()
}
