package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func selfSigned(t *testing.T, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "n1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSKeyAndClientCert(t *testing.T) {
	dir := newDir(t)
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientCert(dir); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LoadClientCert with none = %v, want ErrNotFound", err)
	}
	key, created, err := LoadOrCreateTLSKey(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateTLSKey: %v, created %v", err, created)
	}
	if fi, _ := os.Stat(filepath.Join(dir, TLSKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s mode %s", TLSKeyFile, octal(fi.Mode().Perm()))
	}
	again, created, err := LoadOrCreateTLSKey(dir)
	if err != nil || created || !again.Equal(key) {
		t.Fatalf("reload TLS key: %v, created %v, same %v", err, created, again.Equal(key))
	}
	// The identity still loads with the extra files beside it.
	if _, err := Load(dir); err != nil {
		t.Fatal(err)
	}

	if err := SaveClientCert(dir, selfSigned(t, &key.PublicKey, key)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, TLSCertFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s mode %s", TLSCertFile, octal(fi.Mode().Perm()))
	}
	c, err := LoadClientCert(dir)
	if err != nil || c.Leaf == nil || !key.Equal(c.PrivateKey) {
		t.Fatalf("LoadClientCert: %v", err)
	}

	// A certificate for another key is corrupt.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := SaveClientCert(dir, selfSigned(t, &other.PublicKey, other)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientCert(dir); !errors.Is(err, ErrCorruptKey) {
		t.Fatalf("certificate for another key: %v", err)
	}
	// Readable by others: refused.
	if err := os.Chmod(filepath.Join(dir, TLSCertFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientCert(dir); !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("0644 certificate: %v", err)
	}
	_ = os.Chmod(filepath.Join(dir, TLSCertFile), 0o600)
	if err := os.Chmod(filepath.Join(dir, TLSKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateTLSKey(dir); !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("0644 TLS key: %v", err)
	}
	// The certificate without its key.
	if err := os.Remove(filepath.Join(dir, TLSKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientCert(dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("certificate without key: %v", err)
	}
}
