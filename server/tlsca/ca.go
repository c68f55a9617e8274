package tlsca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// File names inside the CA directory.
const (
	CAKeyFile      = "ca.key"
	CACertFile     = "ca.crt"
	ServerKeyFile  = "server.key"
	ServerCertFile = "server.crt"
)

// backdate is how far NotBefore is set in the past, so a peer whose clock is somewhat behind still accepts a
// freshly issued certificate.
const backdate = time.Hour

// Config says where the CA lives and what it issues.
type Config struct {
	// Dir holds the CA and server key material; created 0700 if missing. Required.
	Dir string
	// Hosts are the DNS names and IP literals the server certificate is valid for.
	// Default: localhost, 127.0.0.1, ::1.
	Hosts []string
	// CAValidity is the CA certificate's lifetime from first start. Default 10 years.
	CAValidity time.Duration
	// ServerCertValidity is a server certificate's lifetime (never beyond the CA's). Default 1 year.
	ServerCertValidity time.Duration
	// RenewBefore: a server certificate expiring within this is reissued at load and by RenewIfDue.
	// Default 30 days; must be shorter than ServerCertValidity.
	RenewBefore time.Duration
	// ClientCertValidity is a node client certificate's lifetime (never beyond the CA's). Default 1 year.
	ClientCertValidity time.Duration
}

// DefaultConfig returns the defaults for a CA in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:                dir,
		Hosts:              []string{"localhost", "127.0.0.1", "::1"},
		CAValidity:         10 * 365 * 24 * time.Hour,
		ServerCertValidity: 365 * 24 * time.Hour,
		RenewBefore:        30 * 24 * time.Hour,
		ClientCertValidity: 365 * 24 * time.Hour,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if len(c.Hosts) == 0 {
		c.Hosts = d.Hosts
	}
	if c.CAValidity == 0 {
		c.CAValidity = d.CAValidity
	}
	if c.ServerCertValidity == 0 {
		c.ServerCertValidity = d.ServerCertValidity
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = d.RenewBefore
	}
	if c.ClientCertValidity == 0 {
		c.ClientCertValidity = d.ClientCertValidity
	}
	return c
}

// Validate reports the first unusable field, after defaults are applied to zero fields.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Dir == "":
		return fmt.Errorf("tlsca: Dir is empty: %w", ErrInvalidConfig)
	case c.CAValidity < 0 || c.ServerCertValidity < 0 || c.RenewBefore < 0 || c.ClientCertValidity < 0:
		return fmt.Errorf("tlsca: validity periods must be positive: %w", ErrInvalidConfig)
	case c.RenewBefore >= c.ServerCertValidity:
		return fmt.Errorf("tlsca: RenewBefore (%s) must be shorter than ServerCertValidity (%s), or every load reissues: %w",
			c.RenewBefore, c.ServerCertValidity, ErrInvalidConfig)
	}
	for _, h := range c.Hosts {
		if h == "" || strings.ContainsAny(h, " \t/:") && net.ParseIP(h) == nil {
			return fmt.Errorf("tlsca: host %q is neither a DNS name nor an IP address: %w", h, ErrInvalidConfig)
		}
	}
	return nil
}

// CA is the server's certificate authority and current server certificate. Safe for concurrent use.
type CA struct {
	cfg    Config
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	caPEM  []byte

	mu     sync.RWMutex
	server *tls.Certificate
}

// LoadOrCreate loads the CA in cfg.Dir, creating it at first start, and makes sure the server certificate
// covers cfg.Hosts and is not within RenewBefore of expiry at now (reissuing it with the same CA if not).
// An existing CA is never replaced: if only one of ca.key and ca.crt exists, it fails with ErrIncomplete.
func LoadOrCreate(cfg Config, now time.Time) (*CA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := secretfile.EnsureDir(cfg.Dir, "CA directory"); err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	secretfile.RemoveStaleTemps(cfg.Dir, CAKeyFile, CACertFile, ServerKeyFile, ServerCertFile)

	ca := &CA{cfg: cfg}
	keyThere, err := present(filepath.Join(cfg.Dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	certThere, err := present(filepath.Join(cfg.Dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	switch {
	case keyThere && certThere:
		if err := ca.loadCA(); err != nil {
			return nil, fmt.Errorf("tlsca: %w", err)
		}
	case !keyThere && !certThere:
		if err := ca.createCA(now); err != nil {
			return nil, fmt.Errorf("tlsca: %w", err)
		}
	default:
		return nil, fmt.Errorf("tlsca: %s has only one of %s and %s; restore both from a backup (nodes pinned this CA): %w",
			cfg.Dir, CAKeyFile, CACertFile, ErrIncomplete)
	}
	if _, err := ca.RenewIfDue(now); err != nil {
		return nil, err
	}
	return ca, nil
}

func present(path string) (bool, error) {
	if err := secretfile.CheckFile(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// newCACert makes a CA key and its self-signed certificate (DER), named "hashfleet <kind> CA <random tag>",
// valid from now for validity.
func newCACert(kind string, now time.Time, validity time.Duration) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("CA serial: %w", err)
	}
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return nil, nil, fmt.Errorf("CA name: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hashfleet " + kind + " CA " + hex.EncodeToString(tag[:]), Organization: []string{"hashfleet"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	return key, der, nil
}

func (ca *CA) createCA(now time.Time) error {
	key, der, err := newCACert("server", now, ca.cfg.CAValidity)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Certificate first, key last: a crash in between leaves ca.crt alone, which LoadOrCreate reports
	// (ErrIncomplete) instead of silently making a second CA.
	if err := secretfile.WriteAtomic(ca.cfg.Dir, CACertFile, certPEM); err != nil {
		return err
	}
	if err := secretfile.WriteAtomic(ca.cfg.Dir, CAKeyFile, keyPEM); err != nil {
		return err
	}
	ca.caKey, ca.caCert, ca.caPEM = key, cert, certPEM
	return nil
}

func (ca *CA) loadCA() error {
	key, err := loadKey(filepath.Join(ca.cfg.Dir, CAKeyFile))
	if err != nil {
		return err
	}
	certPEM, cert, err := loadCert(filepath.Join(ca.cfg.Dir, CACertFile))
	if err != nil {
		return err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return fmt.Errorf("%s is not a CA certificate: %w", filepath.Join(ca.cfg.Dir, CACertFile), ErrCorrupt)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return fmt.Errorf("%s does not match %s: %w", CAKeyFile, CACertFile, ErrCorrupt)
	}
	ca.caKey, ca.caCert, ca.caPEM = key, cert, certPEM
	return nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// readSecret reads a secret file with secretfile.Read; one too large to be ours is corrupt.
func readSecret(path string) ([]byte, error) {
	b, err := secretfile.Read(path)
	if errors.Is(err, secretfile.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", err, ErrCorrupt)
	}
	return b, err
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	raw, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: not a single PEM PRIVATE KEY block: %w", path, ErrCorrupt)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %T, want an ECDSA key: %w", path, k, ErrCorrupt)
	}
	return ek, nil
}

func loadCert(path string) ([]byte, *x509.Certificate, error) {
	raw, err := readSecret(path)
	if err != nil {
		return nil, nil, err
	}
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, nil, fmt.Errorf("%s: not a single PEM CERTIFICATE block: %w", path, ErrCorrupt)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	return raw, c, nil
}

// RenewIfDue keeps the server certificate current: it loads server.key/server.crt if not loaded, and issues
// a new one (same CA) if they are missing, unreadable, not signed by this CA, do not cover exactly the
// configured hosts, or expire within RenewBefore of now. renewed reports whether a new one was issued.
// Call it from a daily tick on the injected clock; the TLS config picks the new certificate up at once.
func (ca *CA) RenewIfDue(now time.Time) (renewed bool, err error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.server == nil {
		if cert, ok := ca.loadServer(now); ok {
			ca.server = cert
			return false, nil
		}
	} else if ca.serverUsable(ca.server.Leaf, now) {
		return false, nil
	}
	cert, err := ca.issueServer(now)
	if err != nil {
		return false, fmt.Errorf("tlsca: issue server certificate: %w", err)
	}
	ca.server = cert
	return true, nil
}

// loadServer returns the persisted server certificate if it is usable at now. Anything wrong with it
// (missing, corrupt, stale, or a key file group/others could read, so possibly leaked) means "issue a new
// one": unlike the CA, the server key can be replaced without touching any node.
func (ca *CA) loadServer(now time.Time) (*tls.Certificate, bool) {
	key, err := loadKey(filepath.Join(ca.cfg.Dir, ServerKeyFile))
	if err != nil {
		return nil, false
	}
	_, leaf, err := loadCert(filepath.Join(ca.cfg.Dir, ServerCertFile))
	if err != nil || !key.PublicKey.Equal(leaf.PublicKey) || !ca.serverUsable(leaf, now) {
		return nil, false
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.caCert.Raw}, PrivateKey: key, Leaf: leaf}, true
}

func (ca *CA) serverUsable(leaf *x509.Certificate, now time.Time) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca.caCert) != nil {
		return false
	}
	if !now.Add(ca.cfg.RenewBefore).Before(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return false
	}
	var have []string
	have = append(have, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		have = append(have, ip.String())
	}
	return slices.Equal(sortedUnique(have), sortedUnique(ca.normalizedHosts()))
}

func (ca *CA) normalizedHosts() []string {
	out := make([]string, 0, len(ca.cfg.Hosts))
	for _, h := range ca.cfg.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			out = append(out, ip.String())
		} else {
			out = append(out, strings.ToLower(h))
		}
	}
	return out
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func (ca *CA) notAfter(now time.Time, validity time.Duration) time.Time {
	na := now.Add(validity)
	if na.After(ca.caCert.NotAfter) {
		na = ca.caCert.NotAfter
	}
	return na
}

func (ca *CA) issueServer(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: ca.cfg.Hosts[0], Organization: []string{"hashfleet"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     ca.notAfter(now, ca.cfg.ServerCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range sortedUnique(ca.normalizedHosts()) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if !tmpl.NotAfter.After(now.Add(ca.cfg.RenewBefore)) {
		return nil, fmt.Errorf("the CA expires at %s, too soon to issue a server certificate; a new CA is needed and every node must pin it again: %w",
			ca.caCert.NotAfter.UTC().Format(time.RFC3339), ErrInvalidConfig)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, &key.PublicKey, ca.caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// Key before certificate: a crash in between leaves a key that matches no certificate, which the next
	// load treats as "issue a new one".
	if err := secretfile.WriteAtomic(ca.cfg.Dir, ServerKeyFile, keyPEM); err != nil {
		return nil, err
	}
	if err := secretfile.WriteAtomic(ca.cfg.Dir, ServerCertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, err
	}
	// The chain carries the CA certificate too, so a node enrolling by trust on first use can see (and print
	// the fingerprint of) the CA it is about to pin.
	return &tls.Certificate{Certificate: [][]byte{der, ca.caCert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// CAPEM is the CA certificate in PEM, what EnrollResponse hands a node to pin (out of band, or verified by
// the operator). A copy.
func (ca *CA) CAPEM() []byte { return bytes.Clone(ca.caPEM) }

// Fingerprint is the CA certificate's fingerprint (see Fingerprint), what the server prints at start and a
// node pins with --ca-fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.caCert) }

// Fingerprint is "SHA256:" and the lowercase hex SHA-256 of a certificate's DER encoding.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// SameFingerprint compares a fingerprint as an operator may type it (any case, with or without the
// "SHA256:" prefix, colons or dashes between digits) with Fingerprint(cert).
func SameFingerprint(typed string, cert *x509.Certificate) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.TrimPrefix(s, "sha256:")
		return strings.NewReplacer(":", "", "-", "", " ", "").Replace(s)
	}
	return norm(typed) != "" && norm(typed) == norm(Fingerprint(cert))
}

// CACertificate is the parsed CA certificate.
func (ca *CA) CACertificate() *x509.Certificate { return ca.caCert }

// ServerCertificate is the current server certificate.
func (ca *CA) ServerCertificate() *x509.Certificate {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return ca.server.Leaf
}

// NodeURIPrefix starts the URI SAN that names a node in its client certificate.
const NodeURIPrefix = "urn:hashfleet:node:"

// IssueClientCert issues a client certificate (ClientAuth only) for nodeID's public key pub, valid from now
// for ClientCertValidity. The node keeps the private key; use a TLS-only key, not the identity key, which
// signs session challenges only. The node id is in the URI SAN (NodeURIPrefix + escaped id) and the CN.
func (ca *CA) IssueClientCert(nodeID string, pub crypto.PublicKey, now time.Time) (certPEM []byte, err error) {
	if nodeID == "" {
		return nil, fmt.Errorf("tlsca: issue client certificate: empty node id: %w", ErrInvalidConfig)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(NodeURIPrefix + url.PathEscape(nodeID))
	if err != nil {
		return nil, fmt.Errorf("tlsca: issue client certificate for %q: %w", nodeID, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nodeID, Organization: []string{"hashfleet node"}},
		URIs:         []*url.URL{u},
		NotBefore:    now.Add(-backdate),
		NotAfter:     ca.notAfter(now, ca.cfg.ClientCertValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.caCert, pub, ca.caKey)
	if err != nil {
		return nil, fmt.Errorf("tlsca: issue client certificate for %q: %w", nodeID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// NodeIDFromCert returns the node id a client certificate issued by IssueClientCert names. It does not
// verify the certificate: use it on tls.ConnectionState.VerifiedChains[0][0] (see VerifiedNodeID).
func NodeIDFromCert(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("nil certificate: %w", ErrNotNodeCert)
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("certificate %q is not for client auth: %w", cert.Subject.CommonName, ErrNotNodeCert)
	}
	for _, u := range cert.URIs {
		s := u.String()
		if rest, ok := strings.CutPrefix(s, NodeURIPrefix); ok && rest != "" {
			id, err := url.PathUnescape(rest)
			if err != nil {
				return "", fmt.Errorf("certificate URI %q: %v: %w", s, err, ErrNotNodeCert)
			}
			return id, nil
		}
	}
	return "", fmt.Errorf("certificate %q has no %s URI: %w", cert.Subject.CommonName, NodeURIPrefix, ErrNotNodeCert)
}

// VerifiedNodeID returns the node id of a connection's verified client certificate (mTLS). It fails if the
// connection has no verified chain.
func VerifiedNodeID(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("no verified client certificate: %w", ErrNotNodeCert)
	}
	return NodeIDFromCert(cs.VerifiedChains[0][0])
}

// CheckClientCert is the node's check of the client certificate the server issued it at enrollment: a single
// PEM certificate, for client auth, chaining to the pinned CA (caPEM) at now, naming nodeID, and for the
// public key pub the node generated. It returns the parsed certificate.
func CheckClientCert(certPEM, caPEM []byte, nodeID string, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	b, rest := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("tlsca: client certificate is not a single PEM CERTIFICATE block: %w", ErrNotNodeCert)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tlsca: client certificate: %v: %w", err, ErrNotNodeCert)
	}
	roots, err := ClientTLSConfig(caPEM)
	if err != nil {
		return nil, err
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots.RootCAs, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("tlsca: client certificate does not verify with the pinned CA: %v: %w", err, ErrNotNodeCert)
	}
	id, err := NodeIDFromCert(cert)
	if err != nil {
		return nil, fmt.Errorf("tlsca: %w", err)
	}
	if id != nodeID {
		return nil, fmt.Errorf("tlsca: client certificate names node %q, not %q: %w", id, nodeID, ErrNotNodeCert)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if k, ok := pub.(equaler); !ok || !k.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("tlsca: client certificate is for another public key: %w", ErrNotNodeCert)
	}
	return cert, nil
}
