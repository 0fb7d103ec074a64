package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/bevgo/bev/actor"
	"github.com/bevgo/bev/conn"
	"github.com/bevgo/bev/conn/tlsconn"
)

// run starts the TLS echo server on addr, talks to it through a TLS client
// socket, prints what comes back to w, and closes everything.
func run(w io.Writer, addr string) error {
	cert, pool, err := selfSigned("localhost")
	if err != nil {
		return err
	}
	base := actor.NewBase()
	defer base.Close() // closes the listener and every socket

	serverCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := conn.Listen(base, "tcp", addr, conn.ListenerConfig{Options: actor.CloseOnFree, Layer: tlsconn.Server(serverCfg)}, echo)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := tlsconn.New(base, nil, &tls.Config{RootCAs: pool, ServerName: "localhost"}, tlsconn.Connecting, actor.CloseOnFree)
	if err != nil {
		return err
	}
	events := client.Events()
	in := client.In()
	if err := client.ConnectAddr(ctx, "tcp", ln.Addr().String()); err != nil {
		return err
	}
	select {
	case ev := <-events:
		if ev.Event != actor.Connected {
			return fmt.Errorf("connect: %v: %w", ev.Event, ev.Err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(w, "connected with %s\n", tls.VersionName(tlsconn.Of(client).Conn().ConnectionState().Version))

	text := []byte("hello over TLS\nthe handshake ran on a goroutine the socket owns\n")
	if err := client.Send(ctx, text); err != nil {
		return err
	}
	var got bytes.Buffer
	for got.Len() < len(text) {
		select {
		case chunk, ok := <-in:
			if !ok {
				return fmt.Errorf("echo ended early: %w", client.Err())
			}
			got.Write(chunk)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.Write(got.Bytes())
	return client.Drain(ctx) // writes the rest, sends close_notify, closes
}

// echo serves one accepted TLS socket: echo, and close once the client has
// finished and the echo is out.
func echo(s *conn.Socket) {
	closing := false // touched only by this socket's callbacks
	s.SetCallbacks(actor.Callbacks{
		Read: func(s *actor.Session) { s.Output().MoveFrom(s.Input()) },
		Write: func(s *actor.Session) {
			if closing && s.Output().Len() == 0 {
				s.Close() // closing a TLS socket sends close_notify
			}
		},
		Event: func(s *actor.Session, ev actor.Event, err error) {
			switch {
			case ev&actor.Error != 0 || ev&actor.EOF != 0 && s.Output().Len() == 0:
				s.Close()
			case ev&actor.EOF != 0:
				closing = true // close once the echo is out
			}
		},
	})
	s.Enable(actor.Read | actor.Write)
}

// selfSigned makes an ECDSA P-256 certificate for host, valid for an hour,
// and a pool that trusts it.
func selfSigned(host string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
