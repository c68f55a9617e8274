package tlsca

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// A CA shared by several servers (the members of a cloud cluster): its key and certificate live in a store
// every member reads (server/cloudcluster seals them there), not in Dir. Each member keeps only its own
// server certificate in its Dir, issued by the shared CA for the hosts it serves, so a node that pinned
// the CA at enrollment on one member trusts every member.

// NewCAPEM makes a new CA key and self-signed certificate, valid from now for validity (default 10 years),
// in PEM: the certificate, and the PKCS#8 key. Nothing is written anywhere.
func NewCAPEM(now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if validity <= 0 {
		validity = DefaultConfig("").CAValidity
	}
	key, der, err := newCACert("cluster", now, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsca: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// FromPEM is a CA whose key and certificate are given (NewCAPEM's, as a shared store keeps them) instead
// of read from cfg.Dir. cfg.Dir holds only this server's certificate (server.key, server.crt, 0600 under a
// 0700 directory), issued for cfg.Hosts and renewed like LoadOrCreate's. The CA key is never written.
// Anything unusable in the PEM is ErrCorrupt.
func FromPEM(cfg Config, certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cb, rest := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" || len(trimSpace(rest)) != 0 {
		return nil, fmt.Errorf("tlsca: shared CA certificate is not a single PEM CERTIFICATE block: %w", ErrCorrupt)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: shared CA certificate: %v: %w", err, ErrCorrupt)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("tlsca: shared CA certificate %q is not a CA: %w", cert.Subject.CommonName, ErrCorrupt)
	}
	kb, rest := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" || len(trimSpace(rest)) != 0 {
		return nil, fmt.Errorf("tlsca: shared CA key is not a single PEM PRIVATE KEY block: %w", ErrCorrupt)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: shared CA key: %v: %w", err, ErrCorrupt)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("tlsca: shared CA key is a %T, want an ECDSA key: %w", k, ErrCorrupt)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("tlsca: shared CA key does not match its certificate: %w", ErrCorrupt)
	}
	if err := secretfile.EnsureDir(cfg.Dir, "server certificate directory"); err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	secretfile.RemoveStaleTemps(cfg.Dir, ServerKeyFile, ServerCertFile)
	ca := &CA{cfg: cfg, caKey: key, caCert: cert, caPEM: pem.EncodeToMemory(cb)}
	if _, err := ca.RenewIfDue(now); err != nil {
		return nil, err
	}
	return ca, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
