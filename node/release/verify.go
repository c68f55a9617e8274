package release

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
)

// Verifier checks release archives against the release public keys a node trusts.
type Verifier struct {
	keys map[string]ed25519.PublicKey
}

// NewVerifier trusts keys (at least one).
func NewVerifier(keys ...ed25519.PublicKey) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("release verifier: no trusted release key given")
	}
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("release verifier: a public key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		v.keys[KeyID(k)] = k
	}
	return v, nil
}

// Check is one verification request.
type Check struct {
	// Artifact is the archive's path.
	Artifact string
	// Signature is the signature file's path. Default Artifact + ".sig".
	Signature string
	// Version, when not empty, must equal the signed version.
	Version string
}

var hexRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Verify checks an artifact: its signature file exists and is well formed, is signed by a trusted key,
// the signature verifies, the artifact's size and SHA-256 are the signed ones, and the version is the one
// expected. It returns the verified manifest. Every failure wraps one of the package's sentinel errors.
func (v *Verifier) Verify(c Check) (Manifest, error) {
	sigPath := c.Signature
	if sigPath == "" {
		sigPath = c.Artifact + SigSuffix
	}
	raw, err := readSig(sigPath)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify %s: %w", c.Artifact, err)
	}
	m, err := v.VerifySignature(raw)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify %s: %w", c.Artifact, err)
	}
	sum, size, err := digestFile(c.Artifact)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify %s: %w", c.Artifact, err)
	}
	if size != m.Size {
		return Manifest{}, fmt.Errorf("verify %s: %w: %d bytes, signed as %d bytes (truncated, extended or replaced); do not install it",
			c.Artifact, ErrTampered, size, m.Size)
	}
	if sum != m.SHA256 {
		return Manifest{}, fmt.Errorf("verify %s: %w: sha256 %s, signed as %s; do not install it", c.Artifact, ErrTampered, sum, m.SHA256)
	}
	if c.Version != "" && c.Version != m.Version {
		return Manifest{}, fmt.Errorf("verify %s: %w: signed as version %q, expected %q", c.Artifact, ErrVersionMismatch, m.Version, c.Version)
	}
	return m, nil
}

func readSig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no signature file %s; refusing an unsigned build", ErrUnsigned, path)
	}
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSigFile+1))
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", path, err)
	}
	if len(raw) > maxSigFile {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrMalformedSig, path, maxSigFile)
	}
	return raw, nil
}

// VerifySignature checks a signature file's bytes and returns the manifest it vouches for; it does not
// look at the artifact.
func (v *Verifier) VerifySignature(raw []byte) (Manifest, error) {
	var sf sigFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrMalformedSig, err)
	}
	if sf.Format != Format {
		return Manifest{}, fmt.Errorf("%w: format %q, want %q", ErrMalformedSig, sf.Format, Format)
	}
	if len(sf.Signature) != ed25519.SignatureSize {
		return Manifest{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformedSig, len(sf.Signature), ed25519.SignatureSize)
	}
	var m Manifest
	mdec := json.NewDecoder(bytes.NewReader(sf.Manifest))
	mdec.DisallowUnknownFields()
	if err := mdec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrMalformedSig, err)
	}
	key, ok := v.keys[m.KeyID]
	if !ok {
		return Manifest{}, fmt.Errorf("%w: key id %q is not a trusted release key of this node", ErrUnknownKey, m.KeyID)
	}
	var signed bytes.Buffer
	signed.WriteString(domain)
	if err := json.Compact(&signed, sf.Manifest); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrMalformedSig, err)
	}
	if !ed25519.Verify(key, signed.Bytes(), sf.Signature) {
		return Manifest{}, fmt.Errorf("%w: the signature or the manifest was altered, or another key signed it", ErrBadSignature)
	}
	if !hexRe.MatchString(m.SHA256) || m.Size < 0 || !ValidVersion(m.Version) {
		return Manifest{}, fmt.Errorf("%w: signed manifest has an invalid digest, size or version", ErrMalformedSig)
	}
	return m, nil
}

// NewVerifierFromFiles trusts the PKIX PEM public keys in paths (at least one), as a node configured with
// its release keys does.
func NewVerifierFromFiles(paths ...string) (*Verifier, error) {
	keys := make([]ed25519.PublicKey, 0, len(paths))
	for _, p := range paths {
		k, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewVerifier(keys...)
}
