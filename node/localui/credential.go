package localui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashfleet/hashfleet/actors/secretfile"
	"golang.org/x/crypto/argon2"
)

// CredentialFile is the local-admin credential's file name in the UI directory: the user name and an
// argon2id hash of the password, nothing else, mode 0600.
const CredentialFile = "local-admin.json"

// Password rules SetLocalAdmin applies.
const (
	// MinPasswordLength is the fewest characters (not bytes) a local-admin password may have.
	MinPasswordLength = 12
	// MaxPasswordBytes bounds a password (and what the login form reads of one).
	MaxPasswordBytes = 1024
	// MaxUserLength bounds a user name; names use letters, digits and . _ - @.
	MaxUserLength = 64
)

// argonParams are the argon2id cost parameters, stored with each hash so they can be raised later without
// breaking existing credentials.
type argonParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
	KeyLen  uint32
	SaltLen int
}

// defaultArgon is RFC 9106's second recommended option (t=3, 64 MiB, p=4): ~0.15 s on a 2-core node.
var defaultArgon = argonParams{Time: 3, Memory: 64 * 1024, Threads: 4, KeyLen: 32, SaltLen: 16}

// Bounds a stored hash's parameters must respect, so an edited file cannot make one login take minutes.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16
)

type credentialFile struct {
	Version int       `json:"version"`
	User    string    `json:"user"`
	Hash    string    `json:"hash"`
	SetAt   time.Time `json:"set_at"`
}

// credential is a loaded local-admin credential.
type credential struct {
	user  string
	p     argonParams
	salt  []byte
	key   []byte
	stamp string // identifies this credential; sessions made under another stamp are void
}

// SetLocalAdmin sets the local UI's administrator: user and an argon2id hash of password, in its own 0600 file
// (CredentialFile) under dir, created 0700 if missing. It replaces any earlier local admin, which ends every
// session logged in with the old credential. It refuses (ErrWeakPassword, ErrInvalidUser) a password shorter
// than MinPasswordLength characters, longer than MaxPasswordBytes, containing control characters, built from
// fewer than 5 different characters, containing the user name, or among the commonest passwords.
//
// dir must not hold any cloud credential: this file is the only secret the local UI reads.
func SetLocalAdmin(dir, user, password string) error {
	return setLocalAdmin(dir, user, password, defaultArgon, time.Now())
}

func setLocalAdmin(dir, user, password string, p argonParams, now time.Time) error {
	if err := CheckUser(user); err != nil {
		return err
	}
	if err := CheckPassword(user, password); err != nil {
		return err
	}
	if err := secretfile.EnsureDir(dir, "local UI directory"); err != nil {
		return fmt.Errorf("set local admin: %w", err)
	}
	secretfile.RemoveStaleTemps(dir, CredentialFile)
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("set local admin: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	hash := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
	data, err := json.MarshalIndent(credentialFile{Version: 1, User: user, Hash: hash, SetAt: now.UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("set local admin: %w", err)
	}
	if err := secretfile.WriteAtomic(dir, CredentialFile, append(data, '\n')); err != nil {
		return fmt.Errorf("set local admin: %w", err)
	}
	return nil
}

// LocalAdmin returns the user name of the local admin set in dir; an error wrapping ErrNoLocalAdmin when none
// is set, ErrCorrupt or secretfile.ErrInsecurePermissions when the file cannot be trusted.
func LocalAdmin(dir string) (string, error) {
	c, err := readCredential(filepath.Join(dir, CredentialFile))
	if err != nil {
		return "", err
	}
	return c.user, nil
}

// CheckUser says why user cannot be a local-admin user name (nil if it can).
func CheckUser(user string) error {
	if user == "" || len(user) > MaxUserLength {
		return fmt.Errorf("user name must be 1 to %d characters: %w", MaxUserLength, ErrInvalidUser)
	}
	for _, r := range user {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@", r))) {
			return fmt.Errorf("user name %q may use only letters, digits and . _ - @: %w", user, ErrInvalidUser)
		}
	}
	return nil
}

// commonPasswords are refused whatever their length: the top of every leaked-password list at 12+ characters.
var commonPasswords = []string{
	"123456789012", "1234567890123", "12345678901234", "123456789000", "qwertyuiopas", "qwerty123456",
	"password1234", "password12345", "password123456", "passwordpassword", "administrator", "administrator1",
	"1q2w3e4r5t6y", "1qaz2wsx3edc", "iloveyou1234", "letmein12345", "welcome12345", "changeme1234",
	"hashfleet123", "hashfleet1234", "bitcoin12345", "antminer1234",
}

// CheckPassword says, in words an operator acts on, why password is too weak for user (nil if it is not).
func CheckPassword(user, password string) error {
	weak := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrWeakPassword)
	}
	if !utf8.ValidString(password) {
		return weak("password is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(password); n < MinPasswordLength {
		return weak("password must be at least %d characters long (this one has %d); a few unrelated words make a strong one",
			MinPasswordLength, n)
	}
	if len(password) > MaxPasswordBytes {
		return weak("password must be at most %d bytes", MaxPasswordBytes)
	}
	distinct := map[rune]bool{}
	for _, r := range password {
		if unicode.IsControl(r) {
			return weak("password must not contain control characters")
		}
		distinct[unicode.ToLower(r)] = true
	}
	if len(distinct) < 5 {
		return weak("password uses only %d different characters; use at least 5", len(distinct))
	}
	lower := strings.ToLower(password)
	if len(user) >= 3 && strings.Contains(lower, strings.ToLower(user)) {
		return weak("password must not contain the user name")
	}
	for _, c := range commonPasswords {
		if lower == c {
			return weak("password is one of the most common passwords")
		}
	}
	return nil
}

func readCredential(path string) (*credential, error) {
	raw, err := secretfile.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", path, ErrNoLocalAdmin)
	case errors.Is(err, secretfile.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", err, ErrCorrupt)
	case err != nil:
		return nil, err
	}
	var f credentialFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("%s: unknown version %d: %w", path, f.Version, ErrCorrupt)
	}
	if err := CheckUser(f.User); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	c, err := parseArgon(f.Hash)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	c.user = f.User
	sum := sha256.Sum256([]byte(f.User + "\x00" + f.Hash))
	c.stamp = hex.EncodeToString(sum[:16])
	return c, nil
}

func parseArgon(s string) (*credential, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return nil, errors.New("hash is not in $argon2id$v=..$m=..,t=..,p=..$salt$key form")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, fmt.Errorf("argon2 version %q is not %d", parts[2], argon2.Version)
	}
	var p argonParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return nil, fmt.Errorf("argon2 parameters %q: %v", parts[3], err)
	}
	if p.Time < 1 || p.Time > maxArgonTime || p.Threads < 1 || p.Threads > maxArgonThreads ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgonMemoryKiB {
		return nil, fmt.Errorf("argon2 parameters %q out of bounds", parts[3])
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return nil, errors.New("argon2 salt is not 8 to 64 bytes of base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return nil, errors.New("argon2 key is not 16 to 64 bytes of base64")
	}
	p.KeyLen, p.SaltLen = uint32(len(key)), len(salt)
	return &credential{p: p, salt: salt, key: key}, nil
}

// matches hashes password with c's parameters and compares in constant time.
func (c *credential) matches(password string) bool {
	got := argon2.IDKey([]byte(password), c.salt, c.p.Time, c.p.Memory, c.p.Threads, c.p.KeyLen)
	return subtle.ConstantTimeCompare(got, c.key) == 1
}

// userIs compares user names in constant time.
func (c *credential) userIs(user string) bool {
	a, b := sha256.Sum256([]byte(c.user)), sha256.Sum256([]byte(user))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// credStore reads the credential file, re-reading it when it was replaced (SetLocalAdmin while running).
type credStore struct {
	path string

	mu     sync.Mutex
	info   os.FileInfo
	cached *credential
}

func newCredStore(dir string) *credStore {
	return &credStore{path: filepath.Join(dir, CredentialFile)}
}

// current returns the credential in force: nil and an error wrapping ErrNoLocalAdmin when none is set.
// It costs one lstat when the file did not change.
func (s *credStore) current() (*credential, error) {
	fi, err := os.Lstat(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			s.mu.Lock()
			s.info, s.cached = nil, nil
			s.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", s.path, ErrNoLocalAdmin)
		}
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && s.info != nil && os.SameFile(s.info, fi) && s.info.ModTime().Equal(fi.ModTime()) &&
		s.info.Size() == fi.Size() && s.info.Mode() == fi.Mode() {
		return s.cached, nil
	}
	c, err := readCredential(s.path)
	if err != nil {
		s.info, s.cached = nil, nil
		return nil, err
	}
	s.info, s.cached = fi, c
	return c, nil
}
