package identity

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

// Rotating the miner-signing key happens in two steps, so that a crash or an unreachable rig never leaves
// a rig paired to a key the node no longer has:
//
//	StageMinerSigningKey ─▶ miner-signing.next.key (0600; an existing one is reused, so a retry resumes)
//	  … every Proto rig is re-paired to the next key, authenticated by the current one …
//	CommitMinerSigningKey ─▶ the next key replaces miner-signing.key (atomic rename): the old key is gone
//
// Until the commit the node keeps signing with the current key.

// NextMinerSigningKeyFile holds the staged miner-signing key during a rotation.
const NextMinerSigningKeyFile = "miner-signing.next.key"

// ErrNoStagedKey: CommitMinerSigningKey found no staged key.
var ErrNoStagedKey = errors.New("no staged miner-signing key")

// StageMinerSigningKey returns the staged next miner-signing key, creating it (0600) if none is staged.
func StageMinerSigningKey(dir string) (crypto.Signer, error) {
	path := filepath.Join(dir, NextMinerSigningKeyFile)
	ok, err := present(path)
	if err != nil {
		return nil, fmt.Errorf("stage miner-signing key: %w", err)
	}
	if ok {
		k, err := loadEd25519(path)
		if err != nil {
			return nil, fmt.Errorf("stage miner-signing key: %w", err)
		}
		return minerSigner{key: k}, nil
	}
	if err := secretfile.CheckDir(dir, dirWhat); err != nil {
		return nil, fmt.Errorf("stage miner-signing key: %w", err)
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("stage miner-signing key: generate: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("stage miner-signing key: encode: %w", err)
	}
	if err := secretfile.WriteAtomic(dir, NextMinerSigningKeyFile, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der})); err != nil {
		return nil, fmt.Errorf("stage miner-signing key: %w", err)
	}
	return minerSigner{key: k}, nil
}

// CommitMinerSigningKey makes the staged key the miner-signing key; the old key file is replaced. It
// refuses a staged key equal to the identity key.
func CommitMinerSigningKey(dir string) error {
	next := filepath.Join(dir, NextMinerSigningKeyFile)
	k, err := loadEd25519(next)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("commit miner-signing key in %s: %w", dir, ErrNoStagedKey)
	}
	if err != nil {
		return fmt.Errorf("commit miner-signing key: %w", err)
	}
	id, err := loadEd25519(filepath.Join(dir, IdentityKeyFile))
	if err != nil {
		return fmt.Errorf("commit miner-signing key: %w", err)
	}
	if bytes.Equal(id, k) {
		return fmt.Errorf("commit miner-signing key: the staged key is the identity key: %w", ErrCorruptKey)
	}
	if err := os.Rename(next, filepath.Join(dir, MinerSigningKeyFile)); err != nil {
		return fmt.Errorf("commit miner-signing key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
