// Package testcert makes throwaway TLS certificates for bev's tests: a
// fresh ECDSA P-256 key and a self-signed certificate, its own CA, for one
// host name and 127.0.0.1, valid from an hour ago for a day. Nothing here
// is fit for anything but tests on loopback.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Cert is a generated certificate in the forms tests need.
type Cert struct {
	Host    string          // the DNS name it is for
	TLS     tls.Certificate // the certificate and key, for a server
	Pool    *x509.CertPool  // a pool trusting it, for a client
	CertPEM []byte          // the certificate, PEM-encoded
	KeyPEM  []byte          // the key, PEM-encoded
}

// New returns a fresh certificate for host and 127.0.0.1. It fails only
// if the standard library's key generation or encoding does.
func New(host string) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &Cert{
		Host:    host,
		TLS:     tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Pool:    pool,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}, nil
}

// Configs returns a server configuration with the certificate and a
// client configuration that trusts it alone and expects its host name.
func (c *Cert) Configs() (server, client *tls.Config) {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}},
		&tls.Config{RootCAs: c.Pool, ServerName: c.Host}
}

// Configs makes a fresh certificate for host and 127.0.0.1 and returns a
// server configuration with it and a client configuration that trusts it
// alone and expects host. A failure fails the test with t.Fatal. The
// certificate is valid from an hour before the wall clock's now: inside a
// testing/synctest bubble, whose clock reads the year 2000, make it
// before entering the bubble.
func Configs(t testing.TB, host string) (server, client *tls.Config) {
	t.Helper()
	c, err := New(host)
	if err != nil {
		t.Fatal(err)
	}
	return c.Configs()
}
