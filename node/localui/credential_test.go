package localui

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct{ pw, wantMsg string }{
		{"short", "at least 12 characters long (this one has 5)"},
		{"ééééééééééé", "at least 12 characters"}, // 11 characters, 22 bytes
		{"aaaaaaaaaaaaaaaa", "only 1 different characters"},
		{"abababababababab", "only 2 different characters"},
		{"my-admin-is-strong", "must not contain the user name"},
		{"Password1234", "most common"},
		{"tab\there-is-long", "control characters"},
		{strings.Repeat("abcdef", 200), "at most 1024 bytes"},
	} {
		err := CheckPassword("admin", tc.pw)
		if !errors.Is(err, ErrWeakPassword) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("CheckPassword(%q) = %v, want %q", truncate(tc.pw, 20), err, tc.wantMsg)
		}
	}
	for _, ok := range []string{"correct horse battery", "Zq8!mw3#Lp0x", "ñandú-grün-Straße"} {
		if err := CheckPassword("admin", ok); err != nil {
			t.Errorf("CheckPassword(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "has space", "ümlaut", strings.Repeat("a", 65), "a/b"} {
		if err := CheckUser(bad); !errors.Is(err, ErrInvalidUser) {
			t.Errorf("CheckUser(%q) = %v", bad, err)
		}
	}
}

// TestSetLocalAdminDefaults uses the real argon2id parameters once.
func TestSetLocalAdminDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "localui")
	if err := SetLocalAdmin(dir, "admin", "short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("weak password: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("a refused password still created the directory")
	}
	if err := SetLocalAdmin(dir, "admin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, CredentialFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v mode %v", err, fi.Mode())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v", di.Mode())
	}
	raw, _ := os.ReadFile(filepath.Join(dir, CredentialFile))
	if strings.Contains(string(raw), "correct horse") || !strings.Contains(string(raw), "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("credential file content: %s", raw)
	}
	if u, err := LocalAdmin(dir); err != nil || u != "admin" {
		t.Fatalf("LocalAdmin = %q, %v", u, err)
	}
	c, err := newCredStore(dir).current()
	if err != nil {
		t.Fatal(err)
	}
	if !c.matches("correct horse battery") || c.matches("correct horse batterx") || !c.userIs("admin") || c.userIs("Admin") {
		t.Fatal("verification is wrong")
	}
}

func TestCredentialFileChecks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ui")
	if _, err := LocalAdmin(dir); !errors.Is(err, ErrNoLocalAdmin) {
		t.Fatalf("no file: %v", err)
	}
	if err := SetLocalAdminForTest(dir, "admin", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, CredentialFile)
	store := newCredStore(dir)
	first, err := store.current()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := store.current(); again != first {
		t.Fatal("an unchanged file was parsed again")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.current(); !errors.Is(err, secretfile.ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable credential: %v", err)
	}
	_ = os.Chmod(path, 0o600)
	// A replaced credential is picked up and has a new stamp.
	if err := SetLocalAdminForTest(dir, "admin", "another long passphrase"); err != nil {
		t.Fatal(err)
	}
	second, err := store.current()
	if err != nil || second.stamp == first.stamp || !second.matches("another long passphrase") {
		t.Fatalf("replacement not picked up: %v", err)
	}
	for name, content := range map[string]string{
		"not json":      "{",
		"wrong version": `{"version":2,"user":"admin","hash":"x"}`,
		"not argon2id":  `{"version":1,"user":"admin","hash":"$2a$10$abcdefghijklmnopqrstuv"}`,
		"huge memory":   `{"version":1,"user":"admin","hash":"$argon2id$v=19$m=99999999,t=3,p=4$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"}`,
		"bad user":      `{"version":1,"user":"a b","hash":"$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"}`,
	} {
		if err := secretfile.WriteAtomic(dir, CredentialFile, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if _, err := store.current(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestCertificateMadeOnceAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ui")
	c1, err := LoadOrCreateCertificate(dir, []string{"Node-1.site.example", "192.168.7.10"}, 5*365*24*time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !c1.Created {
		t.Fatal("first run did not report a new certificate")
	}
	key, ok := c1.Leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Fatalf("key %T, want ECDSA P-256", c1.Leaf.PublicKey)
	}
	var sans []string
	sans = append(sans, c1.Leaf.DNSNames...)
	for _, ip := range c1.Leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	slices.Sort(sans)
	if want := []string{"127.0.0.1", "192.168.7.10", "::1", "localhost", "node-1.site.example"}; !slices.Equal(sans, want) {
		t.Fatalf("SANs %v, want %v", sans, want)
	}
	if c1.Leaf.IsCA || !slices.Equal(c1.Leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Fatal("certificate may do more than serve TLS")
	}
	if len(c1.Fingerprint) != 32*3-1 {
		t.Fatalf("fingerprint %q", c1.Fingerprint)
	}
	for _, f := range []string{CertFile, KeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, fi.Mode())
		}
	}
	c2, err := LoadOrCreateCertificate(dir, []string{"192.168.7.10", "node-1.site.example"}, 5*365*24*time.Hour, t0.Add(24*time.Hour))
	if err != nil || c2.Created || c2.Fingerprint != c1.Fingerprint {
		t.Fatalf("restart made a new certificate: %v %v", err, c2.Created)
	}
	// New host names, or near expiry: a new certificate.
	c3, err := LoadOrCreateCertificate(dir, []string{"node-2.site.example"}, 5*365*24*time.Hour, t0)
	if err != nil || !c3.Created || c3.Fingerprint == c1.Fingerprint {
		t.Fatal("changed host names kept the old certificate")
	}
	c4, err := LoadOrCreateCertificate(dir, []string{"node-2.site.example"}, 5*365*24*time.Hour, c3.Leaf.NotAfter.Add(-24*time.Hour))
	if err != nil || !c4.Created {
		t.Fatal("a certificate a day from expiry was kept")
	}
	// A key file others can read is refused, not silently replaced.
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateCertificate(dir, nil, 5*365*24*time.Hour, t0); !errors.Is(err, secretfile.ErrInsecurePermissions) {
		t.Fatalf("world-readable key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("/tmp/x").Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no dir":       {},
		"bad addr":     {Dir: "d", Addr: "8443"},
		"bad host":     {Dir: "d", Hostnames: []string{"a b"}},
		"idle > ttl":   {Dir: "d", SessionTTL: time.Hour, SessionIdle: 2 * time.Hour},
		"short cert":   {Dir: "d", CertValidity: 24 * time.Hour},
		"bad lockouts": {Dir: "d", Login: LoginPolicy{Threshold: -2}},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
