package release

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a key pair on disk and a signed artifact.
type fixture struct {
	dir, priv, pub, artifact string
	key                      ed25519.PrivateKey
	verifier                 *Verifier
}

func newFixture(t *testing.T, version string) fixture {
	t.Helper()
	dir := t.TempDir()
	priv, pub, id, err := GenerateKey(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(pk) != id {
		t.Fatalf("key id %s, keygen said %s", KeyID(pk), id)
	}
	art := filepath.Join(dir, "hashfleet-node-linux-amd64.tar.gz")
	body := bytes.Repeat([]byte("hashfleet release payload\n"), 4096)
	if err := os.WriteFile(art, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(key, art, version); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pk)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, priv: priv, pub: pub, artifact: art, key: key, verifier: v}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	f := newFixture(t, "1.4.2")
	m, err := f.verifier.Verify(Check{Artifact: f.artifact, Version: "1.4.2"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.4.2" || m.Size != 26*4096 || m.Artifact != filepath.Base(f.artifact) || m.KeyID != KeyID(f.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("manifest %+v", m)
	}
	// No expected version: any signed version is fine.
	if _, err := f.verifier.Verify(Check{Artifact: f.artifact}); err != nil {
		t.Fatal(err)
	}
}

func TestKeyFilePermissions(t *testing.T) {
	f := newFixture(t, "")
	st, err := os.Stat(f.priv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %04o, want 0600", st.Mode().Perm())
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(f.priv, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPrivateKey(f.priv); !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %04o: err %v, want ErrKeyPermissions", mode, err)
		}
	}
	if _, _, _, err := GenerateKey(filepath.Dir(f.priv)); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("keygen over an existing key: %v", err)
	}
}

func TestTamperedByteRefused(t *testing.T) {
	f := newFixture(t, "1.0.0")
	b, err := os.ReadFile(f.artifact)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(f.artifact, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = f.verifier.Verify(Check{Artifact: f.artifact})
	if !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "do not install") {
		t.Fatalf("err %v, want ErrTampered with advice", err)
	}
	// Truncated.
	if err := os.WriteFile(f.artifact, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(Check{Artifact: f.artifact}); !errors.Is(err, ErrTampered) {
		t.Fatalf("truncated: err %v", err)
	}
}

func TestWrongKeyRefused(t *testing.T) {
	f := newFixture(t, "1.0.0")
	_, otherPubPath, _, err := GenerateKey(filepath.Join(f.dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifierFromFiles(otherPubPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(Check{Artifact: f.artifact}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("untrusted signer: err %v, want ErrUnknownKey", err)
	}
	// Trusting both keys (a rotation): the release verifies again.
	both, err := NewVerifierFromFiles(otherPubPath, f.pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := both.Verify(Check{Artifact: f.artifact}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifierFromFiles(); err == nil {
		t.Fatal("a verifier without keys")
	}
	if _, err := NewVerifierFromFiles(f.priv); err == nil {
		t.Fatal("a private key file taken as a public key")
	}
	// Another key signs a manifest that claims the trusted key's id.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	sum, size, err := digestFile(f.artifact)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := SignManifest(otherPriv, Manifest{Artifact: "x", Version: "1.0.0", SHA256: sum, Size: size,
		KeyID: KeyID(f.key.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.artifact+SigSuffix, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(Check{Artifact: f.artifact}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged key id: err %v, want ErrBadSignature", err)
	}
}

func TestMissingSignatureRefused(t *testing.T) {
	f := newFixture(t, "1.0.0")
	if err := os.Remove(f.artifact + SigSuffix); err != nil {
		t.Fatal(err)
	}
	_, err := f.verifier.Verify(Check{Artifact: f.artifact})
	if !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("err %v, want ErrUnsigned", err)
	}
}

func TestVersionMismatchRefused(t *testing.T) {
	f := newFixture(t, "1.0.0")
	_, err := f.verifier.Verify(Check{Artifact: f.artifact, Version: "1.0.1"})
	if !errors.Is(err, ErrVersionMismatch) || !strings.Contains(err.Error(), `"1.0.0"`) {
		t.Fatalf("err %v, want ErrVersionMismatch naming the signed version", err)
	}
}

// TestEditedManifestRefused: changing the signed version (or anything) in the .sig breaks the signature.
func TestEditedManifestRefused(t *testing.T) {
	f := newFixture(t, "1.0.0")
	raw, err := os.ReadFile(f.artifact + SigSuffix)
	if err != nil {
		t.Fatal(err)
	}
	var sf sigFile
	if err := json.Unmarshal(raw, &sf); err != nil {
		t.Fatal(err)
	}
	sf.Manifest = bytes.Replace(sf.Manifest, []byte(`"1.0.0"`), []byte(`"9.9.9"`), 1)
	edited, _ := json.Marshal(sf)
	if err := os.WriteFile(f.artifact+SigSuffix, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.verifier.Verify(Check{Artifact: f.artifact, Version: "9.9.9"}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err %v, want ErrBadSignature", err)
	}
}

func TestMalformedSignatureFiles(t *testing.T) {
	f := newFixture(t, "1.0.0")
	cases := map[string][]byte{
		"empty":          nil,
		"not json":       []byte("-----BEGIN SIGNATURE-----"),
		"truncated json": []byte(`{"format":"hashfleet-release-signature-v1","manif`),
		"wrong format":   []byte(`{"format":"other","manifest":{},"signature":""}`),
		"short sig":      []byte(`{"format":"hashfleet-release-signature-v1","manifest":{},"signature":"AAAA"}`),
		"huge":           bytes.Repeat([]byte(" "), maxSigFile+10),
		"unknown field":  []byte(`{"format":"hashfleet-release-signature-v1","manifest":{},"signature":"","extra":1}`),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(f.artifact+SigSuffix, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := f.verifier.Verify(Check{Artifact: f.artifact}); !errors.Is(err, ErrMalformedSig) {
				t.Fatalf("err %v, want ErrMalformedSig", err)
			}
		})
	}
}

func TestSignRefusesBadVersion(t *testing.T) {
	f := newFixture(t, "")
	for _, v := range []string{"1.0 beta", `"1"`, "-rc", strings.Repeat("9", 65), "a\nb"} {
		if _, err := Sign(f.key, f.artifact, v); err == nil {
			t.Fatalf("version %q accepted", v)
		}
	}
}
