package release

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File names keygen writes in its output directory.
const (
	PrivateKeyFile = "release.key"
	PublicKeyFile  = "release.pub"
)

// KeyID names a public key: the first 8 bytes of SHA-256 over the raw key, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new release key in dir (created 0700 if missing): the private key as PKCS#8 PEM in
// release.key with mode 0600, the public key as PKIX PEM in release.pub with mode 0644. It refuses to
// overwrite an existing key. It returns both paths and the key id.
func GenerateKey(dir string) (privPath, pubPath, keyID string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", fmt.Errorf("release keygen: %w", err)
	}
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return "", "", "", fmt.Errorf("release keygen: %s already exists; move it away to make a new key", p)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", "", fmt.Errorf("release keygen: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", "", fmt.Errorf("release keygen: encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", "", fmt.Errorf("release keygen: encode public key: %w", err)
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return "", "", "", err
	}
	return privPath, pubPath, KeyID(pub), nil
}

// writeNew creates path exclusively with mode perm (not widened by the umask's absence: Chmod follows).
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("release keygen: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("release keygen: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("release keygen: chmod %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("release keygen: close %s: %w", path, err)
	}
	return nil
}

// maxKeyFile bounds what is read as a key file.
const maxKeyFile = 16 << 10

// LoadPrivateKey reads a PKCS#8 PEM ed25519 private key. A file readable by group or others is refused with
// ErrKeyPermissions before its contents are read.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("release key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("release key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("release key %s has mode %04o: %w; run chmod 600 %s", path, st.Mode().Perm(), ErrKeyPermissions, path)
	}
	blk, err := readPEM(f, path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("release key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("release key %s: a %T, not an ed25519 key", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads a PKIX PEM ed25519 public key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("release public key: %w", err)
	}
	defer f.Close()
	blk, err := readPEM(f, path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	return ParsePublicKeyDER(blk.Bytes)
}

// ParsePublicKeyDER parses a PKIX DER ed25519 public key.
func ParsePublicKeyDER(der []byte) (ed25519.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("release public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("release public key: a %T, not an ed25519 key", k)
	}
	return pub, nil
}

func readPEM(f *os.File, path, typ string) (*pem.Block, error) {
	buf, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(buf) > maxKeyFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a key file", path, maxKeyFile)
	}
	blk, _ := pem.Decode(buf)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block found", path)
	}
	if blk.Type != typ {
		return nil, fmt.Errorf("%s: PEM block is %q, want %q", path, blk.Type, typ)
	}
	return blk, nil
}
