package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultMaxSize bounds one artifact: 512 MiB, room for any miner firmware image seen in the field.
const DefaultMaxSize int64 = 512 << 20

// Store keeps artifacts on disk, content-addressed by sha256. It is safe for concurrent use: blobs are
// written to a temporary file and renamed into place once their hash is known.
type Store struct {
	dir     string
	maxSize int64
}

// Meta describes a stored artifact.
type Meta struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// OpenStore opens (creating) the store under dir. maxSize <= 0 means DefaultMaxSize.
func OpenStore(dir string, maxSize int64) (*Store, error) {
	if dir == "" {
		return nil, errors.New("artifacts: a directory is required")
	}
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	for _, d := range []string{"blobs", "partial", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("artifacts: create %s: %w", d, err)
		}
	}
	return &Store{dir: dir, maxSize: maxSize}, nil
}

// MaxSize is the largest artifact accepted, in bytes.
func (s *Store) MaxSize() int64 { return s.maxSize }

// ValidSHA checks a lower-case hex sha256.
func ValidSHA(sha string) error {
	if len(sha) != 64 || strings.ToLower(sha) != sha {
		return fmt.Errorf("%q: %w", sha, ErrBadSHA)
	}
	if _, err := hex.DecodeString(sha); err != nil {
		return fmt.Errorf("%q: %w", sha, ErrBadSHA)
	}
	return nil
}

func (s *Store) blobPath(sha string) string { return filepath.Join(s.dir, "blobs", sha) }

// Put stores what r yields, at most MaxSize bytes. want, when not empty, is the sha256 the caller expects:
// other bytes are refused with ErrChecksum and nothing is kept.
func (s *Store) Put(r io.Reader, want string) (Meta, error) {
	if want != "" {
		if err := ValidSHA(want); err != nil {
			return Meta{}, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return Meta{}, fmt.Errorf("artifacts: temp file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, s.maxSize+1))
	if err != nil {
		_ = tmp.Close()
		return Meta{}, fmt.Errorf("artifacts: write: %w", err)
	}
	if n > s.maxSize {
		_ = tmp.Close()
		return Meta{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, s.maxSize)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return Meta{}, fmt.Errorf("artifacts: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return Meta{}, fmt.Errorf("artifacts: close: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return Meta{}, fmt.Errorf("%w: got %s, want %s", ErrChecksum, got, want)
	}
	if err := os.Rename(tmp.Name(), s.blobPath(got)); err != nil {
		return Meta{}, fmt.Errorf("artifacts: store %s: %w", got, err)
	}
	return Meta{SHA256: got, Size: n}, nil
}

// Stat returns the artifact's metadata, or ErrNotFound.
func (s *Store) Stat(sha string) (Meta, error) {
	if err := ValidSHA(sha); err != nil {
		return Meta{}, err
	}
	fi, err := os.Stat(s.blobPath(sha))
	if errors.Is(err, os.ErrNotExist) {
		return Meta{}, fmt.Errorf("%s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("artifacts: stat %s: %w", sha, err)
	}
	return Meta{SHA256: sha, Size: fi.Size()}, nil
}

// Open opens the artifact for reading; the caller closes it.
func (s *Store) Open(sha string) (*os.File, Meta, error) {
	m, err := s.Stat(sha)
	if err != nil {
		return nil, Meta{}, err
	}
	f, err := os.Open(s.blobPath(sha))
	if err != nil {
		return nil, Meta{}, fmt.Errorf("artifacts: open %s: %w", sha, err)
	}
	s.touch(sha, time.Now()) // used: the retention sweep keeps it (file times are wall-clock by nature)
	return f, m, nil
}

// partialPath is where an upload bound to (node, command, sha) grows.
func (s *Store) partialPath(node, command, sha string) string {
	return filepath.Join(s.dir, "partial", hex.EncodeToString([]byte(node))+"."+hex.EncodeToString([]byte(command))+"."+sha)
}

// commitPartial verifies the finished upload's hash and moves it into the blobs; a mismatch removes it.
func (s *Store) commitPartial(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("artifacts: open upload: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("artifacts: hash upload: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		_ = os.Remove(path)
		return fmt.Errorf("%w: got %s, want %s", ErrChecksum, got, want)
	}
	if err := os.Rename(path, s.blobPath(want)); err != nil {
		return fmt.Errorf("artifacts: store %s: %w", want, err)
	}
	return nil
}
