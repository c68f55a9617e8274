package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/hashfleet/hashfleet/actors/secretfile"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// File names inside the identity directory.
const (
	IdentityKeyFile     = "identity.key"
	MinerSigningKeyFile = "miner-signing.key"
	CredentialKeyFile   = "credential.key"
	EnrollmentFile      = "enrollment.json"
)

// keyFiles in the order Create writes them.
var keyFiles = []string{CredentialKeyFile, MinerSigningKeyFile, IdentityKeyFile}

const pemPrivateKey = "PRIVATE KEY"

// dirWhat names the identity directory in secretfile's messages.
const dirWhat = "identity directory"

// Identity is a node's three keypairs, loaded from its identity directory.
type Identity struct {
	dir        string
	identity   ed25519.PrivateKey
	miner      ed25519.PrivateKey
	credential *ecdh.PrivateKey
}

// Create makes the directory (0700) if needed and a fresh identity in it. It refuses if any key file already
// exists (ErrExists): a node's identity is never silently replaced.
func Create(dir string) (*Identity, error) {
	if err := secretfile.EnsureDir(dir, dirWhat); err != nil {
		return nil, err
	}
	secretfile.RemoveStaleTemps(dir, append(keyFiles, EnrollmentFile)...)
	for _, name := range keyFiles {
		if exists, err := present(filepath.Join(dir, name)); err != nil {
			return nil, err
		} else if exists {
			return nil, fmt.Errorf("create identity in %s: %s exists: %w", dir, name, ErrExists)
		}
	}
	_, idKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create identity: generate identity key: %w", err)
	}
	_, minerKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create identity: generate miner-signing key: %w", err)
	}
	credKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create identity: generate credential key: %w", err)
	}
	id := &Identity{dir: dir, identity: idKey, miner: minerKey, credential: credKey}
	keys := map[string]any{IdentityKeyFile: idKey, MinerSigningKeyFile: minerKey, CredentialKeyFile: credKey}
	for _, name := range keyFiles {
		der, err := x509.MarshalPKCS8PrivateKey(keys[name])
		if err != nil {
			return nil, fmt.Errorf("create identity: encode %s: %w", name, err)
		}
		if err := secretfile.WriteAtomic(dir, name, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})); err != nil {
			return nil, fmt.Errorf("create identity: %w", err)
		}
	}
	return id, nil
}

// Load reads the identity in dir. It refuses (ErrInsecurePermissions) if the directory or any key file is
// accessible by group or others, with the chmod that fixes it; ErrNotFound if there is none; ErrIncomplete
// if only some key files exist. Temp files a crash left behind are removed.
func Load(dir string) (*Identity, error) {
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load identity: directory %s does not exist: %w", dir, ErrNotFound)
		}
		return nil, fmt.Errorf("load identity: %w", err)
	}
	var have, missing []string
	for _, name := range keyFiles {
		ok, err := present(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load identity: %w", err)
		}
		if ok {
			have = append(have, name)
		} else {
			missing = append(missing, name)
		}
	}
	switch {
	case len(have) == 0:
		return nil, fmt.Errorf("load identity: no key files in %s: %w", dir, ErrNotFound)
	case len(missing) > 0:
		return nil, fmt.Errorf("load identity: %s has %v but not %v; restore the directory from a backup, or remove it to start over (the node must then enroll again): %w",
			dir, have, missing, ErrIncomplete)
	}
	// The enrollment file holds the api_key: refuse to run with it exposed, too.
	if _, err := present(filepath.Join(dir, EnrollmentFile)); err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	secretfile.RemoveStaleTemps(dir, append(keyFiles, EnrollmentFile)...)

	id := &Identity{dir: dir}
	var err error
	if id.identity, err = loadEd25519(filepath.Join(dir, IdentityKeyFile)); err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	if id.miner, err = loadEd25519(filepath.Join(dir, MinerSigningKeyFile)); err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	if id.credential, err = loadX25519(filepath.Join(dir, CredentialKeyFile)); err != nil {
		return nil, fmt.Errorf("load identity: %w", err)
	}
	if bytes.Equal(id.identity, id.miner) {
		return nil, fmt.Errorf("load identity: %s and %s hold the same key; each must be used in one context only: %w",
			IdentityKeyFile, MinerSigningKeyFile, ErrCorruptKey)
	}
	return id, nil
}

// LoadOrCreate loads the identity in dir, or creates it if the directory has none. created reports which.
// An incomplete or insecure identity is an error, never a reason to make a new one.
func LoadOrCreate(dir string) (id *Identity, created bool, err error) {
	id, err = Load(dir)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, false, err
	}
	id, err = Create(dir)
	if err != nil {
		return nil, false, err
	}
	return id, true, nil
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

// readSecret reads a secret file with secretfile.Read; one too large to be ours is a corrupt key.
func readSecret(path string) ([]byte, error) {
	b, err := secretfile.Read(path)
	if errors.Is(err, secretfile.ErrTooLarge) {
		return nil, fmt.Errorf("%w: %w", err, ErrCorruptKey)
	}
	return b, err
}

func decodePrivateKey(path string) (any, error) {
	raw, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(raw)
	if block == nil || block.Type != pemPrivateKey || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: not a single PEM %q block: %w", path, pemPrivateKey, ErrCorruptKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorruptKey)
	}
	return key, nil
}

func loadEd25519(path string) (ed25519.PrivateKey, error) {
	key, err := decodePrivateKey(path)
	if err != nil {
		return nil, err
	}
	k, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %T, want an ed25519 key: %w", path, key, ErrCorruptKey)
	}
	return k, nil
}

func loadX25519(path string) (*ecdh.PrivateKey, error) {
	key, err := decodePrivateKey(path)
	if err != nil {
		return nil, err
	}
	k, ok := key.(*ecdh.PrivateKey)
	if !ok || k.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%s: holds a %T, want an X25519 key: %w", path, key, ErrCorruptKey)
	}
	return k, nil
}

// Dir is the identity directory.
func (id *Identity) Dir() string { return id.dir }

// IdentityPublicKey is the public half of the identity key (EnrollRequest.identity_public_key).
func (id *Identity) IdentityPublicKey() ed25519.PublicKey {
	return id.identity.Public().(ed25519.PublicKey)
}

// MinerSigningPublicKey is the public half of the miner-signing key (EnrollRequest.miner_signing_public_key,
// and what a Proto rig is paired with).
func (id *Identity) MinerSigningPublicKey() ed25519.PublicKey {
	return id.miner.Public().(ed25519.PublicKey)
}

// CredentialPublicKey is the X25519 public key the cloud seals credential envelopes to
// (EnrollRequest.credential_public_key).
func (id *Identity) CredentialPublicKey() *ecdh.PublicKey { return id.credential.PublicKey() }

// Fingerprint is the identity key's fingerprint, the one the operator confirms in the cloud.
func (id *Identity) Fingerprint() string { return Fingerprint(id.IdentityPublicKey()) }

// Fingerprint returns the fingerprint of an identity public key: "SHA256:" and the first 128 bits of its
// SHA-256 in eight dash-separated groups of four hex digits. It is signing.Fingerprint, which the cloud uses.
func Fingerprint(pub ed25519.PublicKey) string { return signing.Fingerprint(pub) }

// SignChallenge signs a session challenge: the identity key's only use. The signed bytes are
// signing.ChallengeBytes(nodeID, nonce), under the context "hashfleet-session-v1".
func (id *Identity) SignChallenge(nonce []byte, nodeID string) []byte {
	return ed25519.Sign(id.identity, signing.ChallengeBytes(nodeID, nonce))
}

// MinerKeyAnnouncement returns the node's miner-signing public key and the identity key's signature over
// signing.MinerKeyBytes(nodeID, key): what every hello announces, so the cloud learns of a rotated key from
// the node's own identity and nothing else.
func (id *Identity) MinerKeyAnnouncement(nodeID string) (key, signature []byte) {
	key = id.MinerSigningPublicKey()
	return key, ed25519.Sign(id.identity, signing.MinerKeyBytes(nodeID, key))
}

// MinerSigner returns the miner-signing key as a crypto.Signer (ed25519: pass crypto.Hash(0) as opts), for
// JWTs presented to Proto rigs. It does not expose the identity key.
func (id *Identity) MinerSigner() crypto.Signer { return minerSigner{key: id.miner} }

type minerSigner struct{ key ed25519.PrivateKey }

func (s minerSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s minerSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.key.Sign(rand, digest, opts)
}

// HPKEPrivateKey returns the credential key as an HPKE (RFC 9180, DHKEM(X25519, HKDF-SHA256)) private key,
// to open credential envelopes sealed to CredentialPublicKey.
func (id *Identity) HPKEPrivateKey() (hpke.PrivateKey, error) {
	k, err := hpke.NewDHKEMPrivateKey(id.credential)
	if err != nil {
		return nil, fmt.Errorf("credential key as HPKE key: %w", err)
	}
	return k, nil
}

// EnrollRequest returns the enrollment request carrying this node's three public keys.
func (id *Identity) EnrollRequest(code, nodeName, site string) *pb.EnrollRequest {
	return &pb.EnrollRequest{
		Code:                  code,
		NodeName:              nodeName,
		Site:                  site,
		IdentityPublicKey:     bytes.Clone(id.IdentityPublicKey()),
		MinerSigningPublicKey: bytes.Clone(id.MinerSigningPublicKey()),
		CredentialPublicKey:   id.CredentialPublicKey().Bytes(),
	}
}
