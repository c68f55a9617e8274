package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// ServerOption adjusts ServerTLSConfig.
type ServerOption func(*serverOptions)

type serverOptions struct{ clientAuth tls.ClientAuthType }

// RequireClientCert makes the server require a client certificate issued by this CA (mTLS). Read the node id
// from it with VerifiedNodeID.
func RequireClientCert() ServerOption {
	return func(o *serverOptions) { o.clientAuth = tls.RequireAndVerifyClientCert }
}

// VerifyClientCertIfGiven makes the server ask for a client certificate and verify one given against this CA
// (a certificate from any other CA, expired, or not for client auth fails the handshake), while still
// accepting clients that present none. The application then decides per call which ones need it: the split
// gateway's --gateway-mtls lets a node enroll before it has its certificate and requires it for everything
// else (see VerifiedNodeID).
func VerifyClientCertIfGiven() ServerOption {
	return func(o *serverOptions) { o.clientAuth = tls.VerifyClientCertIfGiven }
}

// ServerTLSConfig returns the server's TLS configuration: TLS 1.3 only, the current server certificate
// (renewals by RenewIfDue are picked up by new handshakes). ALPN is left to the server library (gRPC and
// net/http add "h2" themselves).
func (ca *CA) ServerTLSConfig(opts ...ServerOption) *tls.Config {
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			ca.mu.RLock()
			defer ca.mu.RUnlock()
			return ca.server, nil
		},
	}
	if o.clientAuth != tls.NoClientCert {
		pool := x509.NewCertPool()
		pool.AddCert(ca.caCert)
		cfg.ClientCAs = pool
		cfg.ClientAuth = o.clientAuth
	}
	return cfg
}

// ClientOption adjusts ClientTLSConfig.
type ClientOption func(*tls.Config)

// WithClientCertificate presents cert (from IssueClientCert) for mTLS.
func WithClientCertificate(cert tls.Certificate) ClientOption {
	return func(c *tls.Config) { c.Certificates = []tls.Certificate{cert} }
}

// WithServerName sets the name the server certificate must match. Without it, it is taken from the address
// dialled (crypto/tls, gRPC and net/http all do this).
func WithServerName(name string) ClientOption { return func(c *tls.Config) { c.ServerName = name } }

// ClientTLSConfig returns the node's TLS configuration for the server: TLS 1.3 only, and the server
// certificate must chain to the pinned CA and to nothing else (RootCAs holds only the CA certificates in
// caPEM; the system roots are not consulted).
func ClientTLSConfig(caPEM []byte, opts ...ClientOption) (*tls.Config, error) {
	pool := x509.NewCertPool()
	rest := caPEM
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("tlsca: pinned CA holds a %q block: %w", b.Type, ErrBadCAPEM)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsca: pinned CA: %v: %w", err, ErrBadCAPEM)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, fmt.Errorf("tlsca: pinned certificate %q is not a CA: %w", c.Subject.CommonName, ErrBadCAPEM)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("tlsca: pinned CA PEM holds no certificate: %w", ErrBadCAPEM)
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pool,
	}
	for _, o := range opts {
		o(cfg)
	}
	return cfg, nil
}
