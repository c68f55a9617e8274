package tlsca

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFromPEM: two servers given one shared CA each issue their own server certificate, kept in their own
// directory and reused at the next start; both chain to the shared CA, whose key is never written. Garbage
// or a mismatched key is ErrCorrupt.
func TestFromPEM(t *testing.T) {
	now := time.Now()
	certPEM, keyPEM, err := NewCAPEM(now, 0)
	if err != nil {
		t.Fatal(err)
	}
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	a, err := FromPEM(DefaultConfig(dirA), certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromPEM(Config{Dir: dirB, Hosts: []string{"member-b.example"}}, certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() || !bytes.Equal(a.CAPEM(), certPEM) {
		t.Fatal("two servers of one shared CA disagree on it")
	}
	for _, ca := range []*CA{a, b} {
		if err := ca.ServerCertificate().CheckSignatureFrom(ca.CACertificate()); err != nil {
			t.Fatal(err)
		}
	}
	if b.ServerCertificate().DNSNames[0] != "member-b.example" {
		t.Fatalf("hosts %v", b.ServerCertificate().DNSNames)
	}
	for _, dir := range []string{dirA, dirB} {
		if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the shared CA key was written to %s: %v", dir, err)
		}
	}
	again, err := FromPEM(DefaultConfig(dirA), certPEM, keyPEM, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ServerCertificate().Raw, a.ServerCertificate().Raw) {
		t.Fatal("a restart issued a new server certificate instead of reusing the stored one")
	}
	// A server certificate left in the directory by another CA is replaced, not served.
	otherCert, otherKey, _ := NewCAPEM(now, 0)
	other, err := FromPEM(DefaultConfig(dirA), otherCert, otherKey, now)
	if err != nil {
		t.Fatal(err)
	}
	if other.ServerCertificate().CheckSignatureFrom(other.CACertificate()) != nil {
		t.Fatal("served a certificate of another CA")
	}
	for name, tc := range map[string][2][]byte{
		"garbage certificate": {[]byte("nope"), keyPEM},
		"garbage key":         {certPEM, []byte("nope")},
		"key of another CA":   {certPEM, otherKey},
		"key as certificate":  {keyPEM, keyPEM},
		"trailing block":      {append(bytes.Clone(certPEM), certPEM...), keyPEM},
	} {
		if _, err := FromPEM(DefaultConfig(t.TempDir()), tc[0], tc[1], now); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := FromPEM(Config{}, certPEM, keyPEM, now); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no dir: %v", err)
	}
}
