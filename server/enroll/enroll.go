package enroll

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

// SecretSize is the size of the server secret LoadOrCreateSecret makes, and the minimum New accepts.
const SecretSize = 32

// NonceSize is the size of a session challenge nonce.
const NonceSize = 32

// Config sets the lifetimes enrollment and sessions use.
type Config struct {
	// ChallengeTTL is how long a session challenge nonce may be answered. Default 60 s.
	ChallengeTTL time.Duration
	// PendingTTL is how long after redeeming a code the same node may present it again (polling while
	// the operator confirms its fingerprint). Default 7 days.
	PendingTTL time.Duration
	// MaxSessionTTL caps MintSession's ttl. Default 24 h.
	MaxSessionTTL time.Duration
	// MaxCodeTTL caps Mint's ttl. Default 30 days.
	MaxCodeTTL time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ChallengeTTL:  time.Minute,
		PendingTTL:    7 * 24 * time.Hour,
		MaxSessionTTL: 24 * time.Hour,
		MaxCodeTTL:    30 * 24 * time.Hour,
	}
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"ChallengeTTL", c.ChallengeTTL}, {"PendingTTL", c.PendingTTL}, {"MaxSessionTTL", c.MaxSessionTTL}, {"MaxCodeTTL", c.MaxCodeTTL}} {
		if f.d <= 0 {
			return fmt.Errorf("enroll: %s must be positive, is %s: %w", f.name, f.d, ErrInvalidConfig)
		}
	}
	return nil
}

// LoadOrCreateSecret returns the server secret from s, creating a random SecretSize-byte one on first use.
func LoadOrCreateSecret(s SecretStore) ([]byte, error) {
	candidate := make([]byte, SecretSize)
	if _, err := rand.Read(candidate); err != nil {
		return nil, fmt.Errorf("enroll: generate server secret: %w", err)
	}
	secret, err := s.LoadOrStoreSecret(candidate)
	if err != nil {
		return nil, fmt.Errorf("enroll: load server secret: %w", err)
	}
	if len(secret) < SecretSize {
		return nil, fmt.Errorf("enroll: stored server secret is %d bytes: %w", len(secret), ErrWeakSecret)
	}
	return secret, nil
}

// Service mints and checks codes, challenges and sessions. Safe for concurrent use if its stores are.
type Service struct {
	cfg        Config
	codes      CodeStore
	challenges ChallengeStore
	codeKey    []byte // HMAC key for code ids
	sessionKey []byte // HMAC key for session tokens
}

// New returns a Service keyed by secret (at least SecretSize bytes, from LoadOrCreateSecret).
func New(cfg Config, secret []byte, codes CodeStore, challenges ChallengeStore) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(secret) < SecretSize {
		return nil, fmt.Errorf("enroll: server secret is %d bytes, want at least %d: %w", len(secret), SecretSize, ErrWeakSecret)
	}
	if codes == nil || challenges == nil {
		return nil, fmt.Errorf("enroll: nil store: %w", ErrInvalidConfig)
	}
	return &Service{
		cfg:        cfg,
		codes:      codes,
		challenges: challenges,
		codeKey:    derive(secret, "hashfleet-enroll-code-key-v1"),
		sessionKey: derive(secret, "hashfleet-session-token-key-v1"),
	}, nil
}

// derive makes an independent subkey of secret for one purpose.
func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// ---- enrollment codes ----

// crockford is Crockford's base32 alphabet: no I, L, O, U, so codes read aloud and typed survive.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

const (
	codeBytes = 15 // 120 bits
	codeChars = 24 // base32 of 15 bytes
	codeGroup = 6
)

// NormalizeCode returns the canonical form of a code as typed: upper case, without dashes or spaces, with
// Crockford's look-alikes mapped (O→0, I and L→1). It fails with ErrInvalidCode on any other character or
// the wrong length.
func NormalizeCode(code string) (string, error) {
	if len(code) > 4*codeChars {
		return "", fmt.Errorf("code is %d bytes long: %w", len(code), ErrInvalidCode)
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r == 'O':
			r = '0'
		case r == 'I' || r == 'L':
			r = '1'
		}
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r) {
			return "", fmt.Errorf("code has a character outside 0-9 A-Z: %w", ErrInvalidCode)
		}
		b.WriteRune(r)
		if b.Len() > codeChars {
			break
		}
	}
	if b.Len() != codeChars {
		return "", fmt.Errorf("code has %d characters, want %d: %w", b.Len(), codeChars, ErrInvalidCode)
	}
	return b.String(), nil
}

func (s *Service) codeID(normalized string) string {
	m := hmac.New(sha256.New, s.codeKey)
	m.Write([]byte("hashfleet-enroll-code-v1\x00"))
	m.Write([]byte(normalized))
	return hex.EncodeToString(m.Sum(nil))
}

// Mint makes a one-time enrollment code for a node of orgID at site, valid for ttl from now. The code is
// returned once, grouped for reading ("XXXXXX-XXXXXX-XXXXXX-XXXXXX", 120 random bits); the store keeps only
// its HMAC.
func (s *Service) Mint(orgID, site string, ttl time.Duration, now time.Time) (code string, rec CodeRecord, err error) {
	if orgID == "" {
		return "", CodeRecord{}, fmt.Errorf("enroll: mint code: empty org id: %w", ErrInvalidConfig)
	}
	if ttl <= 0 || ttl > s.cfg.MaxCodeTTL {
		return "", CodeRecord{}, fmt.Errorf("enroll: mint code: ttl %s not in (0, %s]: %w", ttl, s.cfg.MaxCodeTTL, ErrInvalidConfig)
	}
	raw := make([]byte, codeBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", CodeRecord{}, fmt.Errorf("enroll: mint code: %w", err)
	}
	plain := crockford.EncodeToString(raw)
	rec = CodeRecord{ID: s.codeID(plain), OrgID: orgID, Site: site, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.codes.PutCode(rec); err != nil {
		return "", CodeRecord{}, fmt.Errorf("enroll: mint code: %w", err)
	}
	groups := make([]string, 0, codeChars/codeGroup)
	for i := 0; i < codeChars; i += codeGroup {
		groups = append(groups, plain[i:i+codeGroup])
	}
	return strings.Join(groups, "-"), rec, nil
}

// Redeem checks an enrollment code presented with a node's identity public key. The first successful
// redemption binds the code to that key (first=true); afterwards only the same key may present it again,
// until PendingTTL after the first redemption or until FinishCode (first=false: the node polling while the
// operator confirms). Any other key gets ErrCodeUsed. An unknown code is ErrInvalidCode, a code past its
// expiry at first redemption ErrCodeExpired.
func (s *Service) Redeem(code string, identityPub ed25519.PublicKey, now time.Time) (rec CodeRecord, first bool, err error) {
	if len(identityPub) != ed25519.PublicKeySize {
		return CodeRecord{}, false, fmt.Errorf("enroll: redeem: identity key is %d bytes: %w", len(identityPub), ErrBadIdentityKey)
	}
	norm, err := NormalizeCode(code)
	if err != nil {
		return CodeRecord{}, false, fmt.Errorf("enroll: redeem: %w", err)
	}
	id := s.codeID(norm)
	rec, err = s.codes.UpdateCode(id, func(r *CodeRecord) error {
		// The store looked the record up by id; compare again in constant time, whatever the store does.
		if subtle.ConstantTimeCompare([]byte(r.ID), []byte(id)) != 1 {
			return fmt.Errorf("code record mismatch: %w", ErrInvalidCode)
		}
		var derr error
		first, derr = decideRedeem(r, identityPub, now, s.cfg.PendingTTL)
		return derr
	})
	if err != nil {
		return CodeRecord{}, false, fmt.Errorf("enroll: redeem code %s: %w", shortID(id), err)
	}
	return rec, first, nil
}

// decideRedeem is the redemption rule, applied to r in place.
func decideRedeem(r *CodeRecord, pub ed25519.PublicKey, now time.Time, pendingTTL time.Duration) (first bool, err error) {
	if !r.FinishedAt.IsZero() {
		return false, fmt.Errorf("enrollment finished at %s: %w", r.FinishedAt.UTC().Format(time.RFC3339), ErrCodeUsed)
	}
	if r.RedeemedAt.IsZero() {
		if !now.Before(r.ExpiresAt) {
			return false, fmt.Errorf("expired at %s: %w", r.ExpiresAt.UTC().Format(time.RFC3339), ErrCodeExpired)
		}
		r.RedeemedAt = now
		r.IdentityKey = bytes.Clone(pub)
		return true, nil
	}
	if subtle.ConstantTimeCompare(r.IdentityKey, pub) != 1 {
		return false, fmt.Errorf("redeemed at %s by another node: %w", r.RedeemedAt.UTC().Format(time.RFC3339), ErrCodeUsed)
	}
	if !now.Before(r.RedeemedAt.Add(pendingTTL)) {
		return false, fmt.Errorf("pending enrollment expired at %s: %w", r.RedeemedAt.Add(pendingTTL).UTC().Format(time.RFC3339), ErrCodeExpired)
	}
	return false, nil
}

// FinishCode ends the enrollment a code started (the api key was delivered, or the operator rejected the
// node): the code is refused from now on, even to the node that redeemed it.
func (s *Service) FinishCode(id string, now time.Time) error {
	_, err := s.codes.UpdateCode(id, func(r *CodeRecord) error {
		if r.FinishedAt.IsZero() {
			r.FinishedAt = now
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enroll: finish code %s: %w", shortID(id), err)
	}
	return nil
}

// ---- api keys ----

// NewAPIKey makes an api key: 32 random bytes, base64url without padding. Give key to the node once and
// keep only hash (NodeRecord.api_key_hash).
func NewAPIKey() (key string, hash []byte, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("enroll: new api key: %w", err)
	}
	key = base64.RawURLEncoding.EncodeToString(raw)
	return key, HashAPIKey(key), nil
}

// HashAPIKey is the stored form of an api key: SHA-256 over a context string and the key. (An api key has
// 256 random bits, so a fast hash is enough: there is nothing to brute-force.)
func HashAPIKey(key string) []byte {
	h := sha256.New()
	h.Write([]byte("hashfleet-api-key-v1\x00"))
	h.Write([]byte(key))
	return h.Sum(nil)
}

// VerifyAPIKey checks key against its stored hash in constant time.
func VerifyAPIKey(key string, hash []byte) error {
	if len(hash) != sha256.Size {
		return fmt.Errorf("enroll: no api key stored: %w", ErrBadAPIKey)
	}
	if subtle.ConstantTimeCompare(HashAPIKey(key), hash) != 1 {
		return fmt.Errorf("enroll: api key does not match: %w", ErrBadAPIKey)
	}
	return nil
}

// ---- session challenges ----

// NewChallenge issues a random nonce for nodeID, answerable once within ChallengeTTL.
func (s *Service) NewChallenge(nodeID string, now time.Time) (Challenge, error) {
	if nodeID == "" {
		return Challenge{}, fmt.Errorf("enroll: new challenge: empty node id: %w", ErrUnknownNode)
	}
	nonce := make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Challenge{}, fmt.Errorf("enroll: new challenge: %w", err)
	}
	c := Challenge{NodeID: nodeID, Nonce: nonce, ExpiresAt: now.Add(s.cfg.ChallengeTTL)}
	if err := s.challenges.PutChallenge(c, now); err != nil {
		return Challenge{}, fmt.Errorf("enroll: new challenge for %q: %w", nodeID, err)
	}
	return Challenge{NodeID: nodeID, Nonce: bytes.Clone(nonce), ExpiresAt: c.ExpiresAt}, nil
}

// VerifyChallenge consumes the challenge (nodeID, nonce) — whatever the outcome, it cannot be answered
// again — and checks it has not expired and that sig is identityPub's ed25519 signature over
// signing.ChallengeBytes(nodeID, nonce), the bytes node/identity signs.
func (s *Service) VerifyChallenge(nodeID string, nonce, sig []byte, identityPub ed25519.PublicKey, now time.Time) error {
	if len(identityPub) != ed25519.PublicKeySize {
		return fmt.Errorf("enroll: verify challenge for %q: identity key is %d bytes: %w", nodeID, len(identityPub), ErrBadIdentityKey)
	}
	c, err := s.challenges.TakeChallenge(nodeID, nonce)
	if err != nil {
		return fmt.Errorf("enroll: verify challenge: %w", err)
	}
	if !now.Before(c.ExpiresAt) {
		return fmt.Errorf("enroll: verify challenge for %q: expired at %s: %w", nodeID, c.ExpiresAt.UTC().Format(time.RFC3339), ErrChallengeExpired)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(identityPub, signing.ChallengeBytes(nodeID, nonce), sig) {
		return fmt.Errorf("enroll: verify challenge for %q: %w", nodeID, ErrBadChallengeSignature)
	}
	return nil
}

// ---- session tokens ----

const (
	tokenPrefix   = "hs1"
	tokenVersion  = 1
	sessionIDSize = 16
	maxTokenLen   = 4096
	tokenFixed    = 1 + 8 + sessionIDSize // version, expiry, session id; node id follows
)

// MintSession returns a session token for nodeID valid for ttl (at most MaxSessionTTL) from now:
// "hs1.<base64url(body)>.<base64url(HMAC-SHA256(body))>", body = version || expiry ms || random session id
// || node id. Any member holding the same server secret verifies it.
func (s *Service) MintSession(nodeID string, ttl time.Duration, now time.Time) (token string, expires time.Time, err error) {
	if nodeID == "" {
		return "", time.Time{}, fmt.Errorf("enroll: mint session: empty node id: %w", ErrUnknownNode)
	}
	if ttl <= 0 || ttl > s.cfg.MaxSessionTTL {
		return "", time.Time{}, fmt.Errorf("enroll: mint session: ttl %s not in (0, %s]: %w", ttl, s.cfg.MaxSessionTTL, ErrInvalidConfig)
	}
	expires = now.Add(ttl).Truncate(time.Millisecond)
	body := make([]byte, 0, tokenFixed+len(nodeID))
	body = append(body, tokenVersion)
	body = binary.BigEndian.AppendUint64(body, uint64(expires.UnixMilli()))
	sid := make([]byte, sessionIDSize)
	if _, err := rand.Read(sid); err != nil {
		return "", time.Time{}, fmt.Errorf("enroll: mint session: %w", err)
	}
	body = append(body, sid...)
	body = append(body, nodeID...)
	token = tokenPrefix + "." + base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(s.tokenMAC(body))
	if len(token) > maxTokenLen {
		return "", time.Time{}, fmt.Errorf("enroll: mint session: node id too long: %w", ErrInvalidConfig)
	}
	return token, expires, nil
}

func (s *Service) tokenMAC(body []byte) []byte {
	m := hmac.New(sha256.New, s.sessionKey)
	m.Write([]byte("hashfleet-session-token-v1\x00"))
	m.Write(body)
	return m.Sum(nil)
}

// VerifySession checks a session token's MAC (constant time) and expiry, and returns the node id it binds.
// ErrBadSession if malformed or tampered, ErrSessionExpired if authentic but expired. The caller still
// checks the node is not revoked (a token outlives nothing but its TTL).
func (s *Service) VerifySession(token string, now time.Time) (nodeID string, err error) {
	nodeID, _, err = s.VerifySessionUntil(token, now)
	return nodeID, err
}

// VerifySessionUntil is VerifySession that also returns when the token expires, so a long-lived stream can
// end with the session.
func (s *Service) VerifySessionUntil(token string, now time.Time) (nodeID string, expires time.Time, err error) {
	nodeID, expires, err = s.verifySession(token, now)
	return nodeID, expires, err
}

func (s *Service) verifySession(token string, now time.Time) (string, time.Time, error) {
	nodeID, err := s.verifySessionBody(token, now)
	if err != nil {
		return "", time.Time{}, err
	}
	body, _ := base64.RawURLEncoding.Strict().DecodeString(strings.Split(token, ".")[1])
	return nodeID, time.UnixMilli(int64(binary.BigEndian.Uint64(body[1:9]))), nil
}

func (s *Service) verifySessionBody(token string, now time.Time) (nodeID string, err error) {
	if len(token) > maxTokenLen {
		return "", fmt.Errorf("enroll: session token too long: %w", ErrBadSession)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != tokenPrefix {
		return "", fmt.Errorf("enroll: session token not of the form %s.<body>.<mac>: %w", tokenPrefix, ErrBadSession)
	}
	body, err1 := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	mac, err2 := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("enroll: session token encoding: %v: %w", err, ErrBadSession)
	}
	if !hmac.Equal(mac, s.tokenMAC(body)) {
		return "", fmt.Errorf("enroll: session token MAC does not verify: %w", ErrBadSession)
	}
	if len(body) <= tokenFixed || body[0] != tokenVersion {
		return "", fmt.Errorf("enroll: session token body malformed: %w", ErrBadSession)
	}
	expires := time.UnixMilli(int64(binary.BigEndian.Uint64(body[1:9])))
	nodeID = string(body[tokenFixed:])
	if !now.Before(expires) {
		return "", fmt.Errorf("enroll: session of node %q expired at %s: %w", nodeID, expires.UTC().Format(time.RFC3339), ErrSessionExpired)
	}
	return nodeID, nil
}

// OpenSession is the OpenSession RPC's decision: the node (its record, looked up by req.node_id) must be
// confirmed and not revoked, and the request must carry both its api_key and a fresh challenge signed by
// its identity key; then a session token valid for ttl is minted. The challenge is consumed whatever the
// outcome. A stolen api_key alone gets ErrBadChallengeSignature.
func (s *Service) OpenSession(node *pb.NodeRecord, req *pb.OpenSessionRequest, ttl time.Duration, now time.Time) (*pb.SessionToken, error) {
	if node == nil {
		return nil, fmt.Errorf("enroll: open session for %q: %w", req.GetNodeId(), ErrUnknownNode)
	}
	if req.GetNodeId() == "" || req.GetNodeId() != node.GetNodeId() {
		return nil, fmt.Errorf("enroll: open session: request for %q, record of %q: %w", req.GetNodeId(), node.GetNodeId(), ErrNodeMismatch)
	}
	if node.GetRevoked() {
		return nil, fmt.Errorf("enroll: open session for %q: %w", node.GetNodeId(), ErrNodeRevoked)
	}
	if !node.GetConfirmed() || len(node.GetApiKeyHash()) == 0 {
		return nil, fmt.Errorf("enroll: open session for %q: %w", node.GetNodeId(), ErrNodeNotConfirmed)
	}
	pub := ed25519.PublicKey(node.GetIdentityPublicKey())
	if fp := node.GetIdentityFingerprint(); fp != "" && len(pub) == ed25519.PublicKeySize && fp != signing.Fingerprint(pub) {
		return nil, fmt.Errorf("enroll: open session for %q: stored fingerprint does not match stored identity key: %w", node.GetNodeId(), ErrNodeMismatch)
	}
	if err := s.VerifyChallenge(req.GetNodeId(), req.GetNonce(), req.GetSignature(), pub, now); err != nil {
		return nil, err
	}
	if err := VerifyAPIKey(req.GetApiKey(), node.GetApiKeyHash()); err != nil {
		return nil, fmt.Errorf("enroll: open session for %q: %w", node.GetNodeId(), err)
	}
	token, expires, err := s.MintSession(node.GetNodeId(), ttl, now)
	if err != nil {
		return nil, err
	}
	return &pb.SessionToken{Token: token, ExpiresAtUnixMs: expires.UnixMilli()}, nil
}
