package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/signing"
)

func newDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "identity")
}

func TestCreateLoadRoundTrip(t *testing.T) {
	dir := newDir(t)
	created, err := Create(dir)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	for _, name := range keyFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, %v; want 0600", name, fi.Mode().Perm(), err)
		}
		raw, _ := os.ReadFile(filepath.Join(dir, name))
		if !bytes.HasPrefix(raw, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Fatalf("%s is not a PEM PRIVATE KEY", name)
		}
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !loaded.IdentityPublicKey().Equal(created.IdentityPublicKey()) ||
		!loaded.MinerSigningPublicKey().Equal(created.MinerSigningPublicKey()) ||
		!loaded.CredentialPublicKey().Equal(created.CredentialPublicKey()) {
		t.Fatal("loaded keys differ from created keys")
	}
	if loaded.IdentityPublicKey().Equal(loaded.MinerSigningPublicKey()) {
		t.Fatal("identity and miner-signing keys are the same")
	}
	if loaded.Fingerprint() != created.Fingerprint() {
		t.Fatal("fingerprint changed across load")
	}

	again, isNew, err := LoadOrCreate(dir)
	if err != nil || isNew || again.Fingerprint() != created.Fingerprint() {
		t.Fatalf("LoadOrCreate on an existing identity: new=%v err=%v", isNew, err)
	}
	if _, err := Create(dir); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over an existing identity: %v, want ErrExists", err)
	}
	fresh, isNew, err := LoadOrCreate(newDir(t))
	if err != nil || !isNew || fresh.Fingerprint() == created.Fingerprint() {
		t.Fatalf("LoadOrCreate on an empty dir: new=%v err=%v", isNew, err)
	}
}

func TestSignChallengeUsesSessionContext(t *testing.T) {
	id, err := Create(newDir(t))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{9}, 32)
	sig := id.SignChallenge(nonce, "node-1")
	if !ed25519.Verify(id.IdentityPublicKey(), signing.ChallengeBytes("node-1", nonce), sig) {
		t.Fatal("challenge signature does not verify over signing.ChallengeBytes")
	}
	if ed25519.Verify(id.IdentityPublicKey(), signing.ChallengeBytes("node-2", nonce), sig) {
		t.Fatal("challenge signature verifies for another node id")
	}
	if ed25519.Verify(id.MinerSigningPublicKey(), signing.ChallengeBytes("node-1", nonce), sig) {
		t.Fatal("challenge signed with the miner-signing key")
	}

	ms := id.MinerSigner()
	if _, ok := ms.(ed25519.PrivateKey); ok {
		t.Fatal("MinerSigner exposes the raw private key")
	}
	msg := []byte("header.claims")
	msig, err := ms.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(id.MinerSigningPublicKey(), msg, msig) || ed25519.Verify(id.IdentityPublicKey(), msg, msig) {
		t.Fatal("MinerSigner does not sign with the miner-signing key")
	}
	if !ms.Public().(ed25519.PublicKey).Equal(id.MinerSigningPublicKey()) {
		t.Fatal("MinerSigner.Public mismatch")
	}
}

func TestHPKECredentialRoundTrip(t *testing.T) {
	id, err := Create(newDir(t))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := hpke.NewDHKEMPublicKey(id.CredentialPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	info := []byte("hashfleet-credential-v1 miner-7")
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, []byte("pool-password"))
	if err != nil {
		t.Fatal(err)
	}
	reloaded, err := Load(id.Dir())
	if err != nil {
		t.Fatal(err)
	}
	sk, err := reloaded.HPKEPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	pt, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info, ct)
	if err != nil || string(pt) != "pool-password" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	req := id.EnrollRequest("CODE", "rack-a", "site-1")
	if !bytes.Equal(req.GetCredentialPublicKey(), id.CredentialPublicKey().Bytes()) ||
		!bytes.Equal(req.GetIdentityPublicKey(), id.IdentityPublicKey()) ||
		!bytes.Equal(req.GetMinerSigningPublicKey(), id.MinerSigningPublicKey()) || req.GetCode() != "CODE" {
		t.Fatal("EnrollRequest does not carry the node's public keys")
	}
}

func TestLoadRefusesInsecurePermissions(t *testing.T) {
	for _, name := range append(append([]string(nil), keyFiles...), EnrollmentFile) {
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			t.Run(name+"/"+mode.String(), func(t *testing.T) {
				dir := newDir(t)
				if _, err := Create(dir); err != nil {
					t.Fatal(err)
				}
				if err := SaveEnrollment(dir, testEnrollment()); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(dir, name)
				if err := os.Chmod(path, mode); err != nil {
					t.Fatal(err)
				}
				_, errLoad := Load(dir)
				_, errEnr := LoadEnrollment(dir)
				for _, err := range []error{errLoad, errEnr} {
					if name != EnrollmentFile && err == errEnr {
						continue // LoadEnrollment reads only enrollment.json
					}
					if !errors.Is(err, ErrInsecurePermissions) {
						t.Fatalf("load with %s at %04o: %v, want ErrInsecurePermissions", name, mode, err)
					}
					msg := err.Error()
					for _, want := range []string{path, "mode 0" + octal(mode), "chmod 600 " + path} {
						if !strings.Contains(msg, want) {
							t.Errorf("error %q does not mention %q", msg, want)
						}
					}
				}
			})
		}
	}
}

func octal(m os.FileMode) string {
	const digits = "01234567"
	p := uint32(m.Perm())
	return string([]byte{digits[p>>6&7], digits[p>>3&7], digits[p&7]})
}

func TestLoadRefusesInsecureDirectory(t *testing.T) {
	dir := newDir(t)
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Fatalf("Load with dir %04o: %v", mode, err)
		}
		if _, err := LoadEnrollment(dir); !errors.Is(err, ErrInsecurePermissions) {
			t.Fatalf("LoadEnrollment with dir %04o: %v", mode, err)
		}
		if _, _, err := LoadOrCreate(dir); !errors.Is(err, ErrInsecurePermissions) {
			t.Fatalf("LoadOrCreate with dir %04o: %v", mode, err)
		}
	}
	// An existing directory that is too open is refused at creation too, not silently fixed.
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(open); !errors.Is(err, ErrInsecurePermissions) {
		t.Fatalf("Create in a 0755 dir: %v", err)
	}
}

func TestLoadRefusesSymlinkedKey(t *testing.T) {
	dir := newDir(t)
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "stolen.key")
	if err := os.Rename(filepath.Join(dir, IdentityKeyFile), elsewhere); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(dir, IdentityKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrInsecurePermissions) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Load with a symlinked key: %v", err)
	}
}

func TestLoadMissingIncompleteCorrupt(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing dir: %v", err)
	}
	empty := newDir(t)
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of an empty dir: %v", err)
	}

	dir := newDir(t)
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CredentialKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), CredentialKeyFile) {
		t.Fatalf("Load with a key file missing: %v", err)
	}
	if _, _, err := LoadOrCreate(dir); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("LoadOrCreate must not replace an incomplete identity: %v", err)
	}

	dir2 := newDir(t)
	if _, err := Create(dir2); err != nil {
		t.Fatal(err)
	}
	// Wrong kind of key: the X25519 key where an ed25519 key belongs.
	cred, _ := os.ReadFile(filepath.Join(dir2, CredentialKeyFile))
	if err := os.WriteFile(filepath.Join(dir2, MinerSigningKeyFile), cred, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir2); !errors.Is(err, ErrCorruptKey) || !strings.Contains(err.Error(), MinerSigningKeyFile) {
		t.Fatalf("Load with an X25519 key as miner key: %v", err)
	}
	// Truncated key.
	id, _ := os.ReadFile(filepath.Join(dir2, IdentityKeyFile))
	if err := os.WriteFile(filepath.Join(dir2, IdentityKeyFile), id[:len(id)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir2); !errors.Is(err, ErrCorruptKey) || !strings.Contains(err.Error(), IdentityKeyFile) {
		t.Fatalf("Load with a truncated identity key: %v", err)
	}
	// A key file far too large to be a key is corrupt too, and refused without reading it all.
	if err := os.WriteFile(filepath.Join(dir2, IdentityKeyFile), make([]byte, secretfile.MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir2)
	if !errors.Is(err, ErrCorruptKey) || !errors.Is(err, secretfile.ErrTooLarge) || !strings.Contains(err.Error(), IdentityKeyFile) {
		t.Fatalf("Load with an oversized identity key: %v", err)
	}
}

// A write that fails between fsync and rename (a crash there) leaves the old file intact and no temp file.
func TestAtomicWriteNeverLeavesTruncatedFile(t *testing.T) {
	dir := newDir(t)
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	first := testEnrollment()
	if err := SaveEnrollment(dir, first); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("simulated crash before rename")
	var sawTemp string
	secretfile.TestHookBeforeRename = func(tmp string) error {
		sawTemp = tmp
		fi, err := os.Stat(tmp)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("temp file %s mode %v, %v", tmp, fi.Mode().Perm(), err)
		}
		return crash
	}
	t.Cleanup(func() { secretfile.TestHookBeforeRename = nil })

	second := first
	second.APIKey = "another-key"
	if err := SaveEnrollment(dir, second); !errors.Is(err, crash) {
		t.Fatalf("SaveEnrollment with a crash: %v", err)
	}
	if sawTemp == "" || filepath.Dir(sawTemp) != dir {
		t.Fatalf("temp file %q not in the target directory", sawTemp)
	}
	if _, err := os.Stat(sawTemp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp file left behind: %v", err)
	}
	got, err := LoadEnrollment(dir)
	if err != nil || got.APIKey != first.APIKey {
		t.Fatalf("after a failed write: %+v, %v; want the first enrollment intact", got, err)
	}

	// Crash during first-run key creation: no key file, no temp file, and a later Create succeeds.
	dir2 := newDir(t)
	if _, err := Create(dir2); !errors.Is(err, crash) {
		t.Fatalf("Create with a crash: %v", err)
	}
	entries, _ := os.ReadDir(dir2)
	if len(entries) != 0 {
		t.Fatalf("failed Create left %v", entries)
	}
	secretfile.TestHookBeforeRename = nil
	if _, err := Create(dir2); err != nil {
		t.Fatalf("Create after a failed Create: %v", err)
	}

	// A temp file a real crash left behind (truncated content) is ignored and cleaned up by Load.
	stale := filepath.Join(dir2, "."+IdentityKeyFile+".tmp-123")
	if err := os.WriteFile(stale, []byte("-----BEGIN PRIV"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir2); err != nil {
		t.Fatalf("Load with a stale temp file: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temp file not cleaned: %v", err)
	}
}

func TestFingerprintStable(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	// Known answer, computed independently (python cryptography + sha256sum): the public key of the all-zero
	// seed is 3b6a27bc…59da29, its SHA-256 starts 139e3940e64b5491722088d9a0d74162.
	const want = "SHA256:139e-3940-e64b-5491-7220-88d9-a0d7-4162"
	if got := Fingerprint(pub); got != want {
		t.Fatalf("Fingerprint = %q, want %q", got, want)
	}
	if Fingerprint(pub) != signing.Fingerprint(pub) {
		t.Fatal("node and cloud fingerprints differ")
	}
	id, _ := Create(newDir(t))
	if !regexp.MustCompile(`^SHA256:([0-9a-f]{4}-){7}[0-9a-f]{4}$`).MatchString(id.Fingerprint()) {
		t.Fatalf("fingerprint %q", id.Fingerprint())
	}
}

func testEnrollment() Enrollment {
	return Enrollment{
		NodeID: "node-1", OrgID: "org-a", ServerURL: "https://cloud.example:7443",
		APIKey: "c2VjcmV0", EnrolledAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	}
}

func TestEnrollmentRoundTripAndValidation(t *testing.T) {
	dir := newDir(t)
	if _, err := LoadEnrollment(dir); err == nil {
		t.Fatal("LoadEnrollment with no directory succeeded")
	}
	if _, err := Create(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnrollment(dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("LoadEnrollment before enrolling: %v", err)
	}
	e := testEnrollment()
	e.CAPEM = testCAPEM(t)
	if err := SaveEnrollment(dir, e); err != nil {
		t.Fatal(err)
	}
	got, err := LoadEnrollment(dir)
	if err != nil || got != e {
		t.Fatalf("LoadEnrollment = %+v, %v", got, err)
	}
	// The api_key never sits in a file with a private key, and no key file mentions enrollment data.
	for _, name := range keyFiles {
		raw, _ := os.ReadFile(filepath.Join(dir, name))
		if bytes.Contains(raw, []byte(e.APIKey)) {
			t.Fatalf("%s contains the api_key", name)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, EnrollmentFile))
	if bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Fatal("enrollment file contains a private key")
	}

	for name, mut := range map[string]func(*Enrollment){
		"no node id":    func(e *Enrollment) { e.NodeID = "" },
		"no org id":     func(e *Enrollment) { e.OrgID = "" },
		"no server url": func(e *Enrollment) { e.ServerURL = "" },
		"bad url":       func(e *Enrollment) { e.ServerURL = "::nope" },
		"bad ca":        func(e *Enrollment) { e.CAPEM = "not pem" },
		"key not ca":    func(e *Enrollment) { e.CAPEM = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" },
	} {
		bad := testEnrollment()
		mut(&bad)
		if err := SaveEnrollment(dir, bad); !errors.Is(err, ErrInvalidEnrollment) {
			t.Errorf("%s: SaveEnrollment = %v, want ErrInvalidEnrollment", name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, EnrollmentFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnrollment(dir); !errors.Is(err, ErrInvalidEnrollment) {
		t.Fatalf("LoadEnrollment of broken JSON: %v", err)
	}
}

// testCAPEM returns a throwaway self-signed CA certificate.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
