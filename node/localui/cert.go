package localui

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// File names of the self-signed certificate and its key in the UI directory.
const (
	CertFile = "local-ui.crt"
	KeyFile  = "local-ui.key"
)

const (
	// certRenewBefore: a certificate expiring within this is remade at start.
	certRenewBefore = 30 * 24 * time.Hour
	certBackdate    = time.Hour
)

// BaseHostnames are always in the certificate.
var BaseHostnames = []string{"localhost", "127.0.0.1", "::1"}

// Certificate is the UI's self-signed certificate.
type Certificate struct {
	// TLS is the certificate and key for a tls.Config.
	TLS tls.Certificate
	// Leaf is the parsed certificate (clients pin it, or its fingerprint).
	Leaf *x509.Certificate
	// Fingerprint is the SHA-256 of the certificate, as browsers show it: "AB:CD:…" (32 bytes).
	Fingerprint string
	// Created reports that this start made the certificate (first run, expiry, host names changed, or the
	// old files were unusable): browsers that trusted the old one warn again.
	Created bool
}

// LoadOrCreateCertificate loads the self-signed certificate in dir, or makes one (ECDSA P-256, valid for
// localhost, 127.0.0.1, ::1 and hostnames, TLS server auth only) when it is missing, unreadable, does not
// match its key, does not cover exactly those names, or is within 30 days of expiry at now. The key and
// certificate are written 0600 under a 0700 dir, atomically.
func LoadOrCreateCertificate(dir string, hostnames []string, validity time.Duration, now time.Time) (*Certificate, error) {
	if validity <= certRenewBefore {
		return nil, fmt.Errorf("local UI certificate: validity %s must be longer than %s: %w", validity, certRenewBefore, ErrInvalidConfig)
	}
	hosts := normalizeHosts(append(slices.Clone(BaseHostnames), hostnames...))
	if err := secretfile.EnsureDir(dir, "local UI directory"); err != nil {
		return nil, fmt.Errorf("local UI certificate: %w", err)
	}
	secretfile.RemoveStaleTemps(dir, CertFile, KeyFile)
	if c, err := loadCertificate(dir); err == nil && usable(c.Leaf, hosts, now) {
		return c, nil
	} else if errors.Is(err, secretfile.ErrInsecurePermissions) {
		return nil, fmt.Errorf("local UI certificate: %w", err)
	}
	c, err := createCertificate(dir, hosts, validity, now)
	if err != nil {
		return nil, fmt.Errorf("local UI certificate: %w", err)
	}
	return c, nil
}

func normalizeHosts(hs []string) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		if ip := net.ParseIP(h); ip != nil {
			out = append(out, ip.String())
		} else if h != "" {
			out = append(out, strings.ToLower(h))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func usable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if now.Before(leaf.NotBefore) || !now.Add(certRenewBefore).Before(leaf.NotAfter) {
		return false
	}
	have := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	return slices.Equal(normalizeHosts(have), hosts)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

func loadCertificate(dir string) (*Certificate, error) {
	keyPEM, err := readPEM(filepath.Join(dir, KeyFile), "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	certPEM, err := readPEM(filepath.Join(dir, CertFile), "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", KeyFile, err, ErrCorrupt)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s holds a %T, want ECDSA: %w", KeyFile, k, ErrCorrupt)
	}
	leaf, err := x509.ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", CertFile, err, ErrCorrupt)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s: %w", CertFile, KeyFile, ErrCorrupt)
	}
	return &Certificate{
		TLS:         tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf},
		Leaf:        leaf,
		Fingerprint: fingerprint(leaf.Raw),
	}, nil
}

func readPEM(path, typ string) ([]byte, error) {
	raw, err := secretfile.Read(path)
	if err != nil {
		if errors.Is(err, secretfile.ErrTooLarge) {
			return nil, fmt.Errorf("%w: %w", err, ErrCorrupt)
		}
		return nil, err
	}
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: not a single PEM %s block: %w", path, typ, ErrCorrupt)
	}
	return b.Bytes, nil
}

func createCertificate(dir string, hosts []string, validity time.Duration, now time.Time) (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hashfleet node local UI", Organization: []string{"hashfleet"}},
		NotBefore:             now.Add(-certBackdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	// Key first, then certificate: a crash in between leaves a key that matches no certificate, which the
	// next start replaces.
	if err := secretfile.WriteAtomic(dir, KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, err
	}
	if err := secretfile.WriteAtomic(dir, CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, err
	}
	return &Certificate{
		TLS:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		Leaf:        leaf,
		Fingerprint: fingerprint(der),
		Created:     true,
	}, nil
}

// tlsConfig is TLS 1.2+ (1.3 whenever the client has it), with only forward-secret AEAD suites for 1.2.
func tlsConfig(c *Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.TLS},
		CipherSuites: []uint16{ // TLS 1.2 only; 1.3 suites are not configurable and all good
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}
