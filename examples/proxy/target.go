package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
	"github.com/bevgo/bev/pipeline"
)

// setupTLS loads -tls-cert and -tls-key for the listening side and builds
// the client configuration of -tls-upstream.
func (p *proxy) setupTLS() error {
	cfg := p.cfg
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		p.serverTLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if !cfg.tlsUpstream {
		return nil
	}
	// The server name comes from the target's host: ConnectHostname sets
	// it on a TLS socket, and dial sets it for the filter.
	p.clientTLS = &tls.Config{InsecureSkipVerify: cfg.insecure}
	if cfg.tlsCA != "" {
		pem, err := os.ReadFile(cfg.tlsCA)
		if err != nil {
			return fmt.Errorf("-tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-tls-ca: no PEM certificate in %s", cfg.tlsCA)
		}
		p.clientTLS.RootCAs = pool
	}
	return nil
}

// dial makes the target side of r and returns it with the function that
// starts connecting it, by host name (ConnectHostname resolves a name and
// tries each address; an IP literal is used as it is). The caller sets
// the target's callbacks before it calls connect: on loopback a connect
// can complete at once, and an event that comes while a bufferevent has
// no callbacks is not heard. connect returns at once: the outcome is the
// target's Connected or Error event. -connect-timeout bounds the lookup,
// the dial and the TLS handshake.
func (p *proxy) dial(r *relay) (st starter, connect func() error, err error) {
	// Not derived from r.ctx: an abort or the shutdown deadline closes the
	// target (settle), and closing a bufferevent cancels its connect. A
	// context of r.ctx's would cost every connection a registration with
	// r.ctx (its map of children) for nothing.
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.connectTimeout)
	r.connectCancel = cancel
	var ts *conn.Socket
	switch {
	case p.clientTLS == nil:
		ts, err = conn.New(p.base, nil, sideOptions)
	case !p.cfg.tlsFilter:
		// A TLS socket: crypto/tls runs over the connection itself.
		ts, err = tlsconn.New(p.base, nil, p.clientTLS, tlsconn.Connecting, sideOptions)
	default:
		return p.dialFilter(ctx, r)
	}
	if err != nil {
		return nil, nil, err
	}
	r.target.b = ts.Bufferevent
	return ts, func() error {
		r.connectStart = time.Now()
		return ts.ConnectHostname(ctx, nil, "tcp", p.targetHost, p.targetPort)
	}, nil
}

// dialFilter is -tls-filter: a plain socket bufferevent connects, and a
// pipeline TLS filter over it runs crypto/tls through the socket's
// buffers (le-proxy's default "wrapper"). The handshake starts at once;
// its ClientHello waits in the socket's output until the connect
// completes, and a failed connect fails the handshake. The filter owns
// the socket (CloseOnFree): draining or closing it does the same to the
// socket.
func (p *proxy) dialFilter(ctx context.Context, r *relay) (starter, func() error, error) {
	sock, err := conn.New(p.base, nil, sideOptions)
	if err != nil {
		return nil, nil, err
	}
	cfg := p.clientTLS.Clone()
	cfg.ServerName = p.targetHost
	f, err := pipeline.NewTLSClient(sock.Bufferevent, cfg, pipeline.TLSOptions{
		Options:          sideOptions,
		HandshakeTimeout: p.cfg.connectTimeout,
	})
	if err != nil {
		sock.Close()
		return nil, nil, err
	}
	r.target.b = f
	r.target.records = true
	return f, func() error {
		r.connectStart = time.Now()
		return sock.ConnectHostname(ctx, nil, "tcp", p.targetHost, p.targetPort)
	}, nil
}
