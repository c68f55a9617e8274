package localui

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Cookie names. The __Host- prefix makes browsers refuse them unless Secure, Path=/ and host-only, so no
// other host on the LAN (or a sibling domain) can set or overwrite them.
const (
	SessionCookie = "__Host-hashfleet-local"
	loginCookie   = "__Host-hashfleet-login"
)

// Form field and header that carry the CSRF token.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// session is one logged-in browser or script. The store keys it by the SHA-256 of its cookie value, so the
// map holds no usable secret and lookups do not compare secrets byte by byte.
type session struct {
	user      string
	csrf      string
	credStamp string // the credential it logged in with; a new credential voids it
	client    string
	created   time.Time
	lastSeen  time.Time
	expires   time.Time // absolute
}

type sessionStore struct {
	ttl, idle time.Duration
	max       int

	mu sync.Mutex
	m  map[[32]byte]*session
}

func newSessionStore(ttl, idle time.Duration, maxSessions int) *sessionStore {
	return &sessionStore{ttl: ttl, idle: idle, max: maxSessions, m: make(map[[32]byte]*session)}
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("localui: crypto/rand failed: " + err.Error()) // never on Linux ≥ 3.17
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKey(id string) [32]byte { return sha256.Sum256([]byte(id)) }

// create starts a session and returns its cookie value. Expired sessions are dropped; at the bound, the
// oldest session ends.
func (s *sessionStore) create(user, credStamp, client string, now time.Time) (string, *session) {
	id := randomToken()
	sess := &session{user: user, csrf: randomToken(), credStamp: credStamp, client: client,
		created: now, lastSeen: now, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	for len(s.m) >= s.max {
		var oldestKey [32]byte
		var oldest *session
		for k, v := range s.m {
			if oldest == nil || v.created.Before(oldest.created) {
				oldestKey, oldest = k, v
			}
		}
		delete(s.m, oldestKey)
	}
	s.m[sessionKey(id)] = sess
	return id, sess
}

// get returns the live session for a cookie value and marks it used; expired or idle sessions are removed
// and not returned. The returned session must not be modified.
func (s *sessionStore) get(id string, now time.Time) (*session, bool) {
	if id == "" {
		return nil, false
	}
	k := sessionKey(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[k]
	if !ok {
		return nil, false
	}
	if s.expired(sess, now) {
		delete(s.m, k)
		return nil, false
	}
	sess.lastSeen = now
	cp := *sess
	return &cp, true
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return !now.Before(sess.expires) || now.Sub(sess.lastSeen) >= s.idle
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, sessionKey(id))
}

// deleteOthers ends every session not made with credStamp (the local-admin credential changed).
func (s *sessionStore) deleteOthers(credStamp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.m {
		if v.credStamp != credStamp {
			delete(s.m, k)
		}
	}
}

func (s *sessionStore) pruneLocked(now time.Time) {
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
		}
	}
}

// count returns the live sessions at now.
func (s *sessionStore) count(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	return len(s.m)
}
