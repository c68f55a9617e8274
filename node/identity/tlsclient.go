package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// The node's TLS client key and certificate (mTLS), in the identity directory beside the other keys. The TLS
// key is a key of its own (ECDSA P-256): the identity key signs session challenges only, and a TLS handshake
// would make it sign something else.
const (
	TLSKeyFile  = "tls.key" // PKCS#8 PEM, ECDSA P-256, 0600
	TLSCertFile = "tls.crt" // the client certificate the server's CA issued for it at enrollment, 0600
)

// LoadOrCreateTLSKey returns the node's TLS client key from dir, making it (0600, atomically) if there is
// none. created reports which. The directory must exist with mode 0700 (Create makes it).
func LoadOrCreateTLSKey(dir string) (key *ecdsa.PrivateKey, created bool, err error) {
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return nil, false, fmt.Errorf("TLS key: %w", err)
	}
	secretfile.RemoveStaleTemps(dir, TLSKeyFile, TLSCertFile)
	path := filepath.Join(dir, TLSKeyFile)
	ok, err := present(path)
	if err != nil {
		return nil, false, fmt.Errorf("TLS key: %w", err)
	}
	if ok {
		key, err := loadTLSKey(path)
		return key, false, err
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("TLS key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("TLS key: encode: %w", err)
	}
	if err := secretfile.WriteAtomic(dir, TLSKeyFile, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})); err != nil {
		return nil, false, fmt.Errorf("TLS key: %w", err)
	}
	return key, true, nil
}

func loadTLSKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := decodePrivateKey(path)
	if err != nil {
		return nil, fmt.Errorf("TLS key: %w", err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("TLS key: %s holds a %T, want an ECDSA P-256 key: %w", path, key, ErrCorruptKey)
	}
	return k, nil
}

// SaveClientCert writes the client certificate (PEM) the server issued for the TLS key to dir/tls.crt (0600,
// atomically). The caller checks it first (tlsca.CheckClientCert).
func SaveClientCert(dir string, certPEM []byte) error {
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return fmt.Errorf("save client certificate: %w", err)
	}
	if err := secretfile.WriteAtomic(dir, TLSCertFile, certPEM); err != nil {
		return fmt.Errorf("save client certificate: %w", err)
	}
	return nil
}

// LoadClientCert returns the node's TLS client certificate and key from dir, ready for tls.Config
// (Leaf set). ErrNotFound if the node has no certificate (enrolled without TLS, or by an older version);
// ErrIncomplete if the certificate is there without its key; ErrCorruptKey if they do not match.
func LoadClientCert(dir string) (tls.Certificate, error) {
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	certPath := filepath.Join(dir, TLSCertFile)
	raw, err := readSecret(certPath)
	if errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("client certificate: %s: %w", certPath, ErrNotFound)
	}
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	b, rest := pem.Decode(raw)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return tls.Certificate{}, fmt.Errorf("client certificate: %s: not a single PEM CERTIFICATE block: %w", certPath, ErrCorruptKey)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %s: %v: %w", certPath, err, ErrCorruptKey)
	}
	keyPath := filepath.Join(dir, TLSKeyFile)
	if ok, err := present(keyPath); err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	} else if !ok {
		return tls.Certificate{}, fmt.Errorf("client certificate: %s is there but %s is not; enroll again: %w", TLSCertFile, TLSKeyFile, ErrIncomplete)
	}
	key, err := loadTLSKey(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("client certificate: %w", err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("client certificate: %s is not for the key in %s: %w", TLSCertFile, TLSKeyFile, ErrCorruptKey)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
