package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

// Format is the value of the signature file's "format" field.
const Format = "hashfleet-release-signature-v1"

// SigSuffix is appended to an artifact's path to name its signature file.
const SigSuffix = ".sig"

// domain prefixes the signed bytes so that a release signature can never be confused with another ed25519
// signature made by the same key.
const domain = "hashfleet release manifest v1\n"

// maxSigFile bounds what is read as a signature file.
const maxSigFile = 64 << 10

// Manifest is what a release signature vouches for.
type Manifest struct {
	// Artifact is the base name of the signed file when it was signed (informational: a renamed archive
	// still verifies).
	Artifact string `json:"artifact"`
	// Version is the release version, e.g. "1.4.2"; empty when signed without one.
	Version string `json:"version"`
	// SHA256 is the artifact's digest, lower-case hex.
	SHA256 string `json:"sha256"`
	// Size is the artifact's length in bytes.
	Size int64 `json:"size"`
	// KeyID names the signing key (KeyID).
	KeyID string `json:"key_id"`
}

// sigFile is the on-disk form of a signature. Manifest is kept as its exact bytes: they are what is signed.
type sigFile struct {
	Format    string          `json:"format"`
	Manifest  json.RawMessage `json:"manifest"`
	Signature []byte          `json:"signature"` // ed25519 over domain + Manifest, base64 in JSON
}

// versionRe bounds what a version may look like: no spaces, quotes or control characters.
var versionRe = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}$`)

// ValidVersion reports whether v can be a release version ("" is allowed: no version).
func ValidVersion(v string) bool { return v == "" || versionRe.MatchString(v) }

// Sign signs the artifact at path with key and writes path + ".sig". It returns the manifest signed.
func Sign(key ed25519.PrivateKey, path, version string) (Manifest, error) {
	if !ValidVersion(version) {
		return Manifest{}, fmt.Errorf("release sign: version %q: use letters, digits and . + _ ~ - (at most 64)", version)
	}
	sum, size, err := digestFile(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("release sign: %w", err)
	}
	m := Manifest{Artifact: filepath.Base(path), Version: version, SHA256: sum, Size: size,
		KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	raw, err := SignManifest(key, m)
	if err != nil {
		return Manifest{}, fmt.Errorf("release sign: %w", err)
	}
	if err := os.WriteFile(path+SigSuffix, raw, 0o644); err != nil {
		return Manifest{}, fmt.Errorf("release sign: %w", err)
	}
	return m, nil
}

// SignManifest returns the signature file's bytes for m.
func SignManifest(key ed25519.PrivateKey, m Manifest) ([]byte, error) {
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key, append([]byte(domain), mb...))
	out, err := json.MarshalIndent(sigFile{Format: Format, Manifest: mb, Signature: sig}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// digestFile streams path through SHA-256.
func digestFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
