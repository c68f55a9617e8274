package users

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/crypto/bcrypt"
)

// KeyPrefix starts every API key: hfk_<id>_<secret>.
const KeyPrefix = "hfk_"

// maxPasswordLen is bcrypt's limit: it ignores bytes beyond 72.
const maxPasswordLen = 72

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// UserInfo is a user as listed (no hash).
type UserInfo struct {
	Name    string
	Role    Role
	Created time.Time
}

// KeyInfo is an API key as listed (no secret, no hash).
type KeyInfo struct {
	ID        string
	Name      string
	Role      Role
	CreatedBy string
	Created   time.Time
	Revoked   time.Time // zero: active
	LastUsed  time.Time // zero: not since this server started
}

// RateLimitError is ErrRateLimited with the time until a login may be tried again.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: retry in %s", ErrRateLimited, e.RetryAfter.Round(time.Second))
}
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

type session struct {
	user     string
	csrf     string
	created  time.Time
	lastUsed time.Time
}

// Service is the users, API keys, sessions and login limiter of one server. Safe for concurrent use: HTTP
// handlers call it directly (a lock, no actor: every call is short and touches only these maps; the slow
// bcrypt comparison runs outside the lock).
type Service struct {
	cfg    Config
	log    *slog.Logger
	st     store
	limits loginLimits
	// dummy is a bcrypt hash compared for unknown users, so timing does not tell who exists; made on first
	// use (a hash costs about 60 ms).
	dummyOnce sync.Once
	dummy     []byte
	// bootstrap is the first admin, signed in with the admin token while no user exists (SetBootstrapAdmin).
	bootstrap struct {
		name string
		sum  [32]byte
	}

	mu       sync.Mutex
	users    map[string]*UserRecord
	keys     map[string]*KeyRecord
	sessions map[[32]byte]*session
	failures map[string]loginState // "u:<name>" and "c:<client>"
}

// Open loads users and API keys from db (nil: memory only, for tests).
func Open(db *badger.DB, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, st: store{db: db},
		limits: loginLimits{failures: cfg.LoginFailures, window: cfg.LoginWindow, lockout: cfg.LoginLockout},
		users:  map[string]*UserRecord{}, keys: map[string]*KeyRecord{}, sessions: map[[32]byte]*session{},
		failures: map[string]loginState{}}
	if err := s.st.load(prefixUser, func(v []byte) error {
		var u UserRecord
		if err := json.Unmarshal(v, &u); err != nil {
			return err
		}
		s.users[u.Name] = &u
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.st.load(prefixKey, func(v []byte) error {
		var k KeyRecord
		if err := json.Unmarshal(v, &k); err != nil {
			return err
		}
		s.keys[k.ID] = &k
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// SetBootstrapAdmin lets user name sign in with secret (the server's admin token) while no admin user
// exists: the first such sign-in creates name as an admin with secret as its password. Nothing is hashed
// until then, so starting a server costs no bcrypt work. Once an admin user exists it has no effect.
func (s *Service) SetBootstrapAdmin(name, secret string) error {
	if !nameRE.MatchString(name) || len(secret) < 8 || len(secret) > maxPasswordLen {
		return fmt.Errorf("%w: bootstrap admin %q needs a valid name and an 8 to 72 byte secret", ErrInvalid, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootstrap.name, s.bootstrap.sum = name, sha256.Sum256([]byte(secret))
	return nil
}

// bootstrapLogin creates the first admin when the store is empty and the bootstrap secret matches.
func (s *Service) bootstrapLogin(name, password string) bool {
	s.mu.Lock()
	ok := s.admins() == 0 && s.bootstrap.name != "" && name == s.bootstrap.name && s.users[name] == nil
	want := s.bootstrap.sum
	s.mu.Unlock()
	got := sha256.Sum256([]byte(password))
	if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return false
	}
	if err := s.createUser(name, password, Admin, true); err != nil && !errors.Is(err, ErrExists) {
		s.log.Error("first admin: create", slog.String("user", name), slog.Any("err", err))
		return false
	}
	s.log.Info("first admin user created", slog.String("user", name))
	return true
}

func (s *Service) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("hashfleet-no-such-user"), s.cfg.BcryptCost)
	})
	return s.dummy
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenKey(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// Login checks a password and opens a session. client is the caller's address (rate limiting). Errors:
// ErrBadCredentials, or a *RateLimitError.
func (s *Service) Login(name, password, client string) (token string, p Principal, err error) {
	now := s.cfg.Clock.Now()
	name = strings.ToLower(strings.TrimSpace(name))
	uk, ck := "u:"+name, "c:"+client
	s.mu.Lock()
	for _, k := range []string{uk, ck} {
		if ok, wait := decideLogin(s.failures[k], now); !ok {
			s.mu.Unlock()
			s.log.Warn("login refused: rate limited", slog.String("user", name), slog.String("client", client))
			return "", Principal{}, &RateLimitError{RetryAfter: wait}
		}
	}
	u := s.users[name]
	s.mu.Unlock()
	if u == nil && s.bootstrapLogin(name, password) {
		s.mu.Lock()
		u = s.users[name]
		s.mu.Unlock()
	}
	hash := s.dummyHash()
	if u != nil {
		hash = u.Hash
	}
	match := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && u != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	if !match {
		for _, k := range []string{uk, ck} {
			s.failures[k] = afterFailure(s.failures[k], now, s.limits)
		}
		s.pruneFailures(now)
		s.log.Warn("login failed", slog.String("user", name), slog.String("client", client))
		return "", Principal{}, ErrBadCredentials
	}
	delete(s.failures, uk)
	role, _ := ParseRole(u.Role)
	token = randomToken()
	sess := &session{user: u.Name, csrf: randomToken(), created: now, lastUsed: now}
	s.pruneSessions(now)
	s.sessions[tokenKey(token)] = sess
	s.log.Info("login", slog.String("user", u.Name), slog.String("role", role.String()))
	return token, Principal{Name: "user:" + u.Name, Role: role, CSRF: sess.csrf, Session: true}, nil
}

// pruneFailures forgets expired failure records once the map grows (bounded memory under a spray of names).
func (s *Service) pruneFailures(now time.Time) {
	if len(s.failures) < 10_000 {
		return
	}
	for k, st := range s.failures {
		if expired(st, now, s.limits) {
			delete(s.failures, k)
		}
	}
}

// pruneSessions drops expired sessions, and the oldest beyond MaxSessions-1.
func (s *Service) pruneSessions(now time.Time) {
	for k, ss := range s.sessions {
		if s.sessionExpired(ss, now) {
			delete(s.sessions, k)
		}
	}
	for len(s.sessions) >= s.cfg.MaxSessions {
		var oldest [32]byte
		var at time.Time
		for k, ss := range s.sessions {
			if at.IsZero() || ss.created.Before(at) {
				oldest, at = k, ss.created
			}
		}
		delete(s.sessions, oldest)
	}
}

func (s *Service) sessionExpired(ss *session, now time.Time) bool {
	return now.Sub(ss.created) >= s.cfg.SessionTTL || now.Sub(ss.lastUsed) >= s.cfg.SessionIdle
}

// Session returns the principal of a session token and marks it used. ErrNoSession when unknown, expired,
// or its user was removed.
func (s *Service) Session(token string) (Principal, error) {
	now := s.cfg.Clock.Now()
	k := tokenKey(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[k]
	if !ok {
		return Principal{}, ErrNoSession
	}
	u := s.users[ss.user]
	if u == nil || s.sessionExpired(ss, now) {
		delete(s.sessions, k)
		return Principal{}, ErrNoSession
	}
	ss.lastUsed = now
	role, _ := ParseRole(u.Role) // the user's current role: a demotion applies to live sessions at once
	return Principal{Name: "user:" + u.Name, Role: role, CSRF: ss.csrf, Session: true}, nil
}

// Logout ends a session (unknown tokens are ignored).
func (s *Service) Logout(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, tokenKey(token))
}

// APIKey returns the principal of an API key (hfk_<id>_<secret>). ErrBadKey when malformed, unknown or
// revoked; the comparison is constant-time.
func (s *Service) APIKey(key string) (Principal, error) {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok {
		return Principal{}, ErrBadKey
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || id == "" || secret == "" {
		return Principal{}, ErrBadKey
	}
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil || k.RevokedUnixMs != 0 || subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 {
		return Principal{}, ErrBadKey
	}
	k.LastUsedMs = s.cfg.Clock.Now().UnixMilli()
	role, _ := ParseRole(k.Role)
	return Principal{Name: "key:" + k.ID, Role: role}, nil
}

func (s *Service) checkPassword(pw string) error {
	if len(pw) < s.cfg.MinPasswordLen || len(pw) > maxPasswordLen {
		return fmt.Errorf("%w: password must be %d to %d bytes", ErrInvalid, s.cfg.MinPasswordLen, maxPasswordLen)
	}
	return nil
}

// CreateUser adds a user. Errors wrap ErrInvalid or ErrExists.
func (s *Service) CreateUser(name, password string, role Role) error {
	return s.createUser(name, password, role, false)
}

func (s *Service) createUser(name, password string, role Role, first bool) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: user name %q (1-64 of a-z 0-9 . _ -, starting with a letter or digit)", ErrInvalid, name)
	}
	if !role.Valid() {
		return fmt.Errorf("%w: role %d", ErrInvalid, role)
	}
	if err := s.checkPassword(password); err != nil && !(first && len(password) >= 8 && len(password) <= maxPasswordLen) {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("users: hash password: %w", err)
	}
	rec := &UserRecord{Name: name, Role: role.String(), Hash: hash, CreatedUnixMs: s.cfg.Clock.Now().UnixMilli()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return fmt.Errorf("%w: user %q", ErrExists, name)
	}
	if err := s.st.put(prefixUser+name, rec); err != nil {
		return err
	}
	s.users[name] = rec
	return nil
}

// SetPassword replaces a user's password and ends their sessions.
func (s *Service) SetPassword(name, password string) error {
	if err := s.checkPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.BcryptCost)
	if err != nil {
		return fmt.Errorf("users: hash password: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	next := *u
	next.Hash = hash
	if err := s.st.put(prefixUser+name, &next); err != nil {
		return err
	}
	s.users[name] = &next
	s.endSessions(name)
	return nil
}

func (s *Service) endSessions(name string) {
	for k, ss := range s.sessions {
		if ss.user == name {
			delete(s.sessions, k)
		}
	}
}

func (s *Service) admins() int {
	n := 0
	for _, u := range s.users {
		if u.Role == Admin.String() {
			n++
		}
	}
	return n
}

// SetRole changes a user's role (live sessions take it at once). ErrLastAdmin when it would demote the
// last admin.
func (s *Service) SetRole(name string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("%w: role %d", ErrInvalid, role)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if u.Role == Admin.String() && role != Admin && s.admins() == 1 {
		return ErrLastAdmin
	}
	next := *u
	next.Role = role.String()
	if err := s.st.put(prefixUser+name, &next); err != nil {
		return err
	}
	s.users[name] = &next
	return nil
}

// DeleteUser removes a user and ends their sessions. ErrLastAdmin for the last admin.
func (s *Service) DeleteUser(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[name]
	if u == nil {
		return fmt.Errorf("%w: user %q", ErrNotFound, name)
	}
	if u.Role == Admin.String() && s.admins() == 1 {
		return ErrLastAdmin
	}
	if err := s.st.del(prefixUser + name); err != nil {
		return err
	}
	delete(s.users, name)
	s.endSessions(name)
	return nil
}

// Users lists users by name.
func (s *Service) Users() []UserInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UserInfo, 0, len(s.users))
	for _, u := range s.users {
		r, _ := ParseRole(u.Role)
		out = append(out, UserInfo{Name: u.Name, Role: r, Created: time.UnixMilli(u.CreatedUnixMs)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CreateAPIKey makes a key with role; the returned secret (the whole key) is shown once and never again.
func (s *Service) CreateAPIKey(name string, role Role, by string) (KeyInfo, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return KeyInfo{}, "", fmt.Errorf("%w: key name must be 1 to 100 bytes", ErrInvalid)
	}
	if !role.Valid() {
		return KeyInfo{}, "", fmt.Errorf("%w: role %d", ErrInvalid, role)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	id := fmt.Sprintf("%x", idb)
	secret := randomToken()
	sum := sha256.Sum256([]byte(secret))
	now := s.cfg.Clock.Now()
	rec := &KeyRecord{ID: id, Name: name, Role: role.String(), Hash: sum[:], CreatedBy: by, CreatedUnixMs: now.UnixMilli()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.put(prefixKey+id, rec); err != nil {
		return KeyInfo{}, "", err
	}
	s.keys[id] = rec
	s.log.Info("API key created", slog.String("key", id), slog.String("role", role.String()), slog.String("by", by))
	return keyInfo(rec), KeyPrefix + id + "_" + secret, nil
}

func keyInfo(k *KeyRecord) KeyInfo {
	r, _ := ParseRole(k.Role)
	ki := KeyInfo{ID: k.ID, Name: k.Name, Role: r, CreatedBy: k.CreatedBy, Created: time.UnixMilli(k.CreatedUnixMs)}
	if k.RevokedUnixMs != 0 {
		ki.Revoked = time.UnixMilli(k.RevokedUnixMs)
	}
	if k.LastUsedMs != 0 {
		ki.LastUsed = time.UnixMilli(k.LastUsedMs)
	}
	return ki
}

// APIKeys lists keys, newest first.
func (s *Service) APIKeys() []KeyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]KeyInfo, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, keyInfo(k))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// RevokeAPIKey revokes a key for good (it stays listed, revoked).
func (s *Service) RevokeAPIKey(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return fmt.Errorf("%w: key %q", ErrNotFound, id)
	}
	if k.RevokedUnixMs != 0 {
		return nil
	}
	next := *k
	next.RevokedUnixMs = s.cfg.Clock.Now().UnixMilli()
	if err := s.st.put(prefixKey+id, &next); err != nil {
		return err
	}
	s.keys[id] = &next
	s.log.Info("API key revoked", slog.String("key", id))
	return nil
}

// IsBadCredentials reports whether err is a failed login (wrong password or rate limited).
func IsBadCredentials(err error) bool {
	return errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrRateLimited)
}
