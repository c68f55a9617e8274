package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/enroll"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Errors of the operator-facing calls.
var (
	// ErrUnknownNode: no node record with that id.
	ErrUnknownNode = errors.New("unknown node")
	// ErrFingerprintMismatch: the fingerprint the operator gave is not the node's.
	ErrFingerprintMismatch = errors.New("fingerprint does not match the node's identity key")
	// ErrAlreadyConfirmed: the node was confirmed before.
	ErrAlreadyConfirmed = errors.New("node already confirmed")
	// ErrRevoked: the node was revoked; it must enroll again with a new identity.
	ErrRevoked = errors.New("node revoked")
	// ErrInvalid: a request argument is unusable.
	ErrInvalid = errors.New("invalid request")
)

// Store is what the registry persists (store.Badger).
type Store interface {
	PutNodeRecord(rec *pb.NodeRecord) error
	NodeRecord(id string) (*pb.NodeRecord, error)
	NodeRecords() ([]*pb.NodeRecord, error)
	UpdateNodeRecord(id string, fn func(*pb.NodeRecord) error) (*pb.NodeRecord, error)
	AppendSecurityEvent(e store.SecurityEvent) error
	SecurityEvents(limit int) ([]store.SecurityEvent, error)
}

// Config configures the registry.
type Config struct {
	// OrgID is the org codes are minted for. Default "default".
	OrgID string
	// SessionTTL is a session token's lifetime; nodes refresh well before. Default 1h.
	SessionTTL time.Duration
	// CodeTTL is an enrollment code's default lifetime. Default 24h.
	CodeTTL time.Duration
	// Keys returns the org's public command keys (EnrollResponse.command_keys). Required.
	Keys func() []*pb.CommandKey
	// IssueClientCert issues a node's TLS client certificate (PEM) for the TLS key it enrolled with
	// (tlsca.CA.IssueClientCert); it goes with the api_key in EnrollResponse.client_certificate_pem. Nil: no
	// certificates (a gateway without TLS).
	IssueClientCert func(nodeID string, pub crypto.PublicKey, now time.Time) ([]byte, error)
	// MaxEventsPerSecond bounds security-event writes; beyond it refusals are only logged and counted.
	// Default 20.
	MaxEventsPerSecond int
	Clock              clock.Clock
	Logger             *slog.Logger
}

// DefaultConfig returns the defaults; Keys must still be set.
func DefaultConfig() Config {
	return Config{OrgID: "default", SessionTTL: time.Hour, CodeTTL: 24 * time.Hour, MaxEventsPerSecond: 20, Clock: clock.Real()}
}

// Registry is the node registry. Safe for concurrent use (its stores are transactional).
type Registry struct {
	cfg Config
	svc *enroll.Service
	st  Store
	log *slog.Logger

	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	dropped     int
}

// New returns a registry over svc and st.
func New(cfg Config, svc *enroll.Service, st Store) (*Registry, error) {
	d := DefaultConfig()
	if cfg.OrgID == "" {
		cfg.OrgID = d.OrgID
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = d.SessionTTL
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = d.CodeTTL
	}
	if cfg.MaxEventsPerSecond == 0 {
		cfg.MaxEventsPerSecond = d.MaxEventsPerSecond
	}
	if cfg.Clock == nil {
		cfg.Clock = d.Clock
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch {
	case svc == nil || st == nil:
		return nil, fmt.Errorf("registry: enroll service and store are required: %w", ErrInvalid)
	case cfg.Keys == nil:
		return nil, fmt.Errorf("registry: Keys is required: %w", ErrInvalid)
	case cfg.SessionTTL < time.Minute:
		return nil, fmt.Errorf("registry: SessionTTL %s is below 1m: %w", cfg.SessionTTL, ErrInvalid)
	}
	return &Registry{cfg: cfg, svc: svc, st: st, log: cfg.Logger.With(slog.String("component", "registry"))}, nil
}

// SessionTTL is the lifetime of the session tokens this registry mints.
func (r *Registry) SessionTTL() time.Duration { return r.cfg.SessionTTL }

// NodeIDFor is the node id of an identity key: "n" and the first 16 hex digits of its SHA-256.
func NodeIDFor(identityPub []byte) string {
	sum := sha256.Sum256(identityPub)
	return "n" + hex.EncodeToString(sum[:8])
}

// event records a security event, within the rate bound.
func (r *Registry) event(ctx context.Context, e store.SecurityEvent) {
	e.At = r.cfg.Clock.Now()
	if ctx != nil {
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			e.Peer = p.Addr.String()
		}
	}
	lv := slog.LevelInfo
	if e.Result == "refused" {
		lv = slog.LevelWarn
	}
	r.log.Log(context.Background(), lv, "security event", slog.String("kind", e.Kind), slog.String("result", e.Result),
		slog.String("node", e.Node), slog.String("reason", e.Reason), slog.String("peer", e.Peer))
	now := time.Now()
	r.mu.Lock()
	if now.Sub(r.windowStart) >= time.Second {
		if r.dropped > 0 {
			r.log.Warn("security events not written: rate bound reached", slog.Int("dropped", r.dropped))
		}
		r.windowStart, r.inWindow, r.dropped = now, 0, 0
	}
	if r.inWindow >= r.cfg.MaxEventsPerSecond {
		r.dropped++
		r.mu.Unlock()
		return
	}
	r.inWindow++
	r.mu.Unlock()
	if err := r.st.AppendSecurityEvent(e); err != nil {
		r.log.Error("write security event", slog.Any("err", err))
	}
}

// SecurityEvents returns the newest limit security events, oldest first.
func (r *Registry) SecurityEvents(limit int) ([]store.SecurityEvent, error) {
	return r.st.SecurityEvents(limit)
}

// MintCode makes a one-time enrollment code for a node at site, valid for ttl (0: CodeTTL). The code is
// returned once; only its HMAC is stored.
func (r *Registry) MintCode(site string, ttl time.Duration) (code string, expires time.Time, err error) {
	if ttl == 0 {
		ttl = r.cfg.CodeTTL
	}
	if len(site) > 128 || !utf8.ValidString(site) {
		return "", time.Time{}, fmt.Errorf("%w: site must be at most 128 bytes of UTF-8", ErrInvalid)
	}
	code, rec, err := r.svc.Mint(r.cfg.OrgID, site, ttl, r.cfg.Clock.Now())
	if err != nil {
		if errors.Is(err, enroll.ErrInvalidConfig) {
			return "", time.Time{}, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return "", time.Time{}, err
	}
	r.event(nil, store.SecurityEvent{Kind: "enrollment_code", Result: "accepted", Reason: "code minted for site " + site})
	return code, rec.ExpiresAt, nil
}

func grpcError(code codes.Code, err error) error { return status.Error(code, err.Error()) }

// checkEnrollRequest validates the public keys and names of an EnrollRequest.
func checkEnrollRequest(req *pb.EnrollRequest) error {
	switch {
	case len(req.GetIdentityPublicKey()) != ed25519.PublicKeySize:
		return fmt.Errorf("identity_public_key is %d bytes, want an ed25519 key of %d", len(req.GetIdentityPublicKey()), ed25519.PublicKeySize)
	case len(req.GetMinerSigningPublicKey()) != ed25519.PublicKeySize:
		return fmt.Errorf("miner_signing_public_key is %d bytes, want an ed25519 key of %d", len(req.GetMinerSigningPublicKey()), ed25519.PublicKeySize)
	case subtle.ConstantTimeCompare(req.GetIdentityPublicKey(), req.GetMinerSigningPublicKey()) == 1:
		return errors.New("identity and miner-signing keys are the same key; each must be used in one context only")
	case len(req.GetNodeName()) > 128 || len(req.GetSite()) > 128 || !utf8.ValidString(req.GetNodeName()) || !utf8.ValidString(req.GetSite()):
		return errors.New("node_name and site must be at most 128 bytes of UTF-8")
	}
	if _, err := ecdh.X25519().NewPublicKey(req.GetCredentialPublicKey()); err != nil {
		return fmt.Errorf("credential_public_key is not an X25519 key: %v", err)
	}
	if len(req.GetTlsPublicKey()) != 0 {
		if _, err := parseTLSPublicKey(req.GetTlsPublicKey(), req.GetIdentityPublicKey(), req.GetMinerSigningPublicKey()); err != nil {
			return err
		}
	}
	return nil
}

// parseTLSPublicKey parses an EnrollRequest.tls_public_key: PKIX DER of an ECDSA P-256 or ed25519 key that
// is neither of the node's signing keys (each key is used in one context only).
func parseTLSPublicKey(der, identity, minerSigning []byte) (crypto.PublicKey, error) {
	if len(der) > 1024 {
		return nil, fmt.Errorf("tls_public_key is %d bytes, too large for a P-256 or ed25519 key", len(der))
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("tls_public_key is not a PKIX public key: %v", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("tls_public_key is an ECDSA key on %s, want P-256", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if bytes.Equal(k, identity) || bytes.Equal(k, minerSigning) {
			return nil, errors.New("tls_public_key is the identity or miner-signing key; the TLS key must be a key of its own")
		}
	default:
		return nil, fmt.Errorf("tls_public_key is a %T, want ECDSA P-256 or ed25519", pub)
	}
	return pub, nil
}

// Enroll is the Enroll RPC. The first call with a fresh code creates a pending node; the node then polls
// with the same request until the operator confirmed its fingerprint, when the api_key is returned, once.
func (r *Registry) Enroll(ctx context.Context, req *pb.EnrollRequest) (*pb.EnrollResponse, error) {
	if err := checkEnrollRequest(req); err != nil {
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Result: "refused", Reason: err.Error()})
		return nil, grpcError(codes.InvalidArgument, fmt.Errorf("enroll: %w", err))
	}
	now := r.cfg.Clock.Now()
	pub := ed25519.PublicKey(req.GetIdentityPublicKey())
	id := NodeIDFor(pub)
	code, first, err := r.svc.Redeem(req.GetCode(), pub, now)
	if err != nil {
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "refused", Reason: err.Error()})
		c := codes.PermissionDenied
		if errors.Is(err, enroll.ErrBadIdentityKey) {
			c = codes.InvalidArgument
		}
		return nil, grpcError(c, err)
	}
	fp := signing.Fingerprint(pub)
	if first {
		site := req.GetSite()
		if site == "" {
			site = code.Site
		}
		rec := &pb.NodeRecord{NodeId: id, OrgId: code.OrgID, Name: req.GetNodeName(), Site: site,
			IdentityPublicKey: pub, MinerSigningPublicKey: req.GetMinerSigningPublicKey(),
			CredentialPublicKey: req.GetCredentialPublicKey(), TlsPublicKey: req.GetTlsPublicKey(),
			IdentityFingerprint: fp, EnrolledAtUnixMs: now.UnixMilli()}
		if err := r.st.PutNodeRecord(rec); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, grpcError(codes.Unavailable, fmt.Errorf("enroll: %w", err))
		}
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "accepted", Reason: "pending confirmation of " + fp})
	}
	rec, err := r.st.NodeRecord(id)
	if err != nil {
		return nil, grpcError(codes.Unavailable, fmt.Errorf("enroll: %w", err))
	}
	switch {
	case rec.GetRevoked():
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "refused", Reason: "node revoked"})
		return nil, status.Errorf(codes.PermissionDenied, "enroll: node %s was revoked; enroll with a new identity", id)
	case subtle.ConstantTimeCompare(rec.GetMinerSigningPublicKey(), req.GetMinerSigningPublicKey()) != 1 ||
		subtle.ConstantTimeCompare(rec.GetCredentialPublicKey(), req.GetCredentialPublicKey()) != 1 ||
		len(rec.GetTlsPublicKey()) != 0 && !bytes.Equal(rec.GetTlsPublicKey(), req.GetTlsPublicKey()):
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "refused", Reason: "public keys differ from the enrolled ones"})
		return nil, status.Errorf(codes.FailedPrecondition, "enroll: node %s is enrolled with other miner-signing, credential or TLS keys", id)
	}
	resp := &pb.EnrollResponse{NodeId: id, OrgId: rec.GetOrgId(), IdentityFingerprint: fp, Site: rec.GetSite()}
	if !rec.GetConfirmed() {
		return resp, nil
	}
	// The client certificate is made before the api_key is spent, so a failure here leaves the node able to
	// poll again.
	var certPEM []byte
	if len(rec.GetTlsPublicKey()) != 0 && r.cfg.IssueClientCert != nil {
		pub, err := parseTLSPublicKey(rec.GetTlsPublicKey(), rec.GetIdentityPublicKey(), rec.GetMinerSigningPublicKey())
		if err == nil {
			certPEM, err = r.cfg.IssueClientCert(id, pub, now)
		}
		if err != nil {
			r.log.Error("issue client certificate", slog.String("node", id), slog.Any("err", err))
			return nil, grpcError(codes.Internal, fmt.Errorf("enroll: issue the client certificate: %w", err))
		}
	}
	key, hash, err := enroll.NewAPIKey()
	if err != nil {
		return nil, grpcError(codes.Internal, err)
	}
	errIssued := errors.New("api key already issued")
	_, err = r.st.UpdateNodeRecord(id, func(n *pb.NodeRecord) error {
		if len(n.GetApiKeyHash()) != 0 {
			return errIssued
		}
		n.ApiKeyHash = hash
		return nil
	})
	if errors.Is(err, errIssued) {
		r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "refused", Reason: "api key already issued"})
		return nil, status.Errorf(codes.FailedPrecondition, "enroll: node %s already received its api key; it is never issued twice", id)
	}
	if err != nil {
		return nil, grpcError(codes.Unavailable, fmt.Errorf("enroll: %w", err))
	}
	if err := r.svc.FinishCode(code.ID, now); err != nil {
		r.log.Error("finish enrollment code", slog.String("node", id), slog.Any("err", err))
	}
	reason := "api key issued"
	if certPEM != nil {
		reason = "api key and client certificate issued"
	}
	r.event(ctx, store.SecurityEvent{Kind: "enroll", Node: id, Result: "accepted", Reason: reason})
	resp.ApiKey, resp.Confirmed, resp.CommandKeys, resp.ClientCertificatePem = key, true, r.cfg.Keys(), certPEM
	return resp, nil
}

// PendingNode is an enrolled node waiting for the operator to confirm its fingerprint.
type PendingNode struct {
	NodeID      string
	Name        string
	Site        string
	Fingerprint string
	EnrolledAt  time.Time
}

// Pending lists nodes waiting for confirmation, oldest first.
func (r *Registry) Pending() ([]PendingNode, error) {
	recs, err := r.st.NodeRecords()
	if err != nil {
		return nil, err
	}
	var out []PendingNode
	for _, n := range recs {
		if n.GetConfirmed() || n.GetRevoked() {
			continue
		}
		out = append(out, PendingNode{NodeID: n.GetNodeId(), Name: n.GetName(), Site: n.GetSite(),
			Fingerprint: n.GetIdentityFingerprint(), EnrolledAt: time.UnixMilli(n.GetEnrolledAtUnixMs())})
	}
	return out, nil
}

// Confirm marks a pending node confirmed when fingerprint is exactly its identity fingerprint. The node
// receives its api_key at its next poll.
func (r *Registry) Confirm(nodeID, fingerprint string) (*pb.NodeRecord, error) {
	rec, err := r.st.UpdateNodeRecord(nodeID, func(n *pb.NodeRecord) error {
		switch {
		case n.GetRevoked():
			return ErrRevoked
		case n.GetConfirmed():
			return ErrAlreadyConfirmed
		case subtle.ConstantTimeCompare([]byte(fingerprint), []byte(n.GetIdentityFingerprint())) != 1:
			return ErrFingerprintMismatch
		}
		n.Confirmed = true
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidKey):
		return nil, fmt.Errorf("confirm %q: %w", nodeID, ErrUnknownNode)
	case err != nil:
		r.event(nil, store.SecurityEvent{Kind: "confirm", Node: nodeID, Result: "refused", Reason: err.Error()})
		return nil, err
	}
	r.event(nil, store.SecurityEvent{Kind: "confirm", Node: nodeID, Result: "accepted", Reason: "fingerprint " + fingerprint})
	return rec, nil
}

// Revoke revokes a node: its sessions are refused from its next stream or refresh on, and it can never
// open a session again.
func (r *Registry) Revoke(nodeID string) error {
	_, err := r.st.UpdateNodeRecord(nodeID, func(n *pb.NodeRecord) error {
		n.Revoked = true
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidKey) {
		return fmt.Errorf("revoke %q: %w", nodeID, ErrUnknownNode)
	}
	if err == nil {
		r.event(nil, store.SecurityEvent{Kind: "revoke", Node: nodeID, Result: "accepted"})
	}
	return err
}

// Record returns a node's enrollment record (ErrUnknownNode when there is none).
func (r *Registry) Record(nodeID string) (*pb.NodeRecord, error) {
	rec, err := r.st.NodeRecord(nodeID)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalidKey) {
		return nil, fmt.Errorf("node %q: %w", nodeID, ErrUnknownNode)
	}
	return rec, err
}

// ErrBadMinerKey: a miner-signing key announcement that does not verify.
var ErrBadMinerKey = errors.New("miner-signing key announcement refused")

// AnnounceMinerKey records the miner-signing key a node announced in its hello (after
// `hashfleet node rotate-signing-key`), so a later device transfer to it hands Proto rigs to the key it
// really holds. The announcement must be signed by the node's enrolled identity key over
// signing.MinerKeyBytes; an empty key announces nothing. A key that differs from the record replaces it and
// is written to the security event log; a bad one is refused (and logged) and the record kept.
func (r *Registry) AnnounceMinerKey(nodeID string, key, sig []byte) error {
	if len(key) == 0 && len(sig) == 0 {
		return nil
	}
	refuse := func(reason string) error {
		r.event(nil, store.SecurityEvent{Kind: "miner-key", Node: nodeID, Result: "refused", Reason: reason})
		return fmt.Errorf("%w: %s", ErrBadMinerKey, reason)
	}
	rec, err := r.activeRecord(nodeID)
	if err != nil {
		return err
	}
	switch {
	case len(key) != ed25519.PublicKeySize:
		return refuse(fmt.Sprintf("key is %d bytes, want %d", len(key), ed25519.PublicKeySize))
	case len(sig) != ed25519.SignatureSize || !ed25519.Verify(rec.GetIdentityPublicKey(), signing.MinerKeyBytes(nodeID, key), sig):
		return refuse("signature does not verify with the node's identity key")
	case subtle.ConstantTimeCompare(key, rec.GetIdentityPublicKey()) == 1:
		return refuse("the miner-signing key must differ from the identity key")
	case subtle.ConstantTimeCompare(key, rec.GetMinerSigningPublicKey()) == 1:
		return nil
	}
	if _, err := r.st.UpdateNodeRecord(nodeID, func(n *pb.NodeRecord) error {
		n.MinerSigningPublicKey = append([]byte(nil), key...)
		return nil
	}); err != nil {
		return fmt.Errorf("record miner-signing key of %s: %w", nodeID, err)
	}
	r.event(nil, store.SecurityEvent{Kind: "miner-key", Node: nodeID, Result: "accepted",
		Reason: "rotated to " + signing.Fingerprint(key)})
	return nil
}

// ConfirmedNodes lists the ids of confirmed, unrevoked nodes (key rotations are sent to each).
func (r *Registry) ConfirmedNodes() ([]string, error) {
	recs, err := r.st.NodeRecords()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range recs {
		if n.GetConfirmed() && !n.GetRevoked() {
			out = append(out, n.GetNodeId())
		}
	}
	return out, nil
}

// activeRecord returns the record of a node that may hold a session: known, confirmed, not revoked.
func (r *Registry) activeRecord(nodeID string) (*pb.NodeRecord, error) {
	rec, err := r.st.NodeRecord(nodeID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidKey):
		return nil, fmt.Errorf("node %q: %w", nodeID, enroll.ErrUnknownNode)
	case err != nil:
		return nil, err
	case rec.GetRevoked():
		return nil, fmt.Errorf("node %q: %w", nodeID, enroll.ErrNodeRevoked)
	case !rec.GetConfirmed() || len(rec.GetApiKeyHash()) == 0:
		return nil, fmt.Errorf("node %q: %w", nodeID, enroll.ErrNodeNotConfirmed)
	}
	return rec, nil
}

func sessionCode(err error) codes.Code {
	switch {
	case errors.Is(err, enroll.ErrTooManyChallenges):
		return codes.ResourceExhausted
	case errors.Is(err, enroll.ErrUnknownNode), errors.Is(err, enroll.ErrNodeNotConfirmed):
		return codes.FailedPrecondition
	case errors.Is(err, enroll.ErrNodeRevoked):
		return codes.PermissionDenied
	case errors.Is(err, enroll.ErrBadAPIKey), errors.Is(err, enroll.ErrBadChallengeSignature), errors.Is(err, enroll.ErrUnknownChallenge),
		errors.Is(err, enroll.ErrChallengeExpired), errors.Is(err, enroll.ErrNodeMismatch):
		return codes.Unauthenticated
	}
	return codes.Unavailable
}

// Challenge is the Challenge RPC: a nonce for a confirmed node to sign with its identity key.
func (r *Registry) Challenge(ctx context.Context, req *pb.ChallengeRequest) (*pb.ChallengeResponse, error) {
	if _, err := r.activeRecord(req.GetNodeId()); err != nil {
		r.event(ctx, store.SecurityEvent{Kind: "challenge", Node: req.GetNodeId(), Result: "refused", Reason: err.Error()})
		return nil, grpcError(sessionCode(err), err)
	}
	c, err := r.svc.NewChallenge(req.GetNodeId(), r.cfg.Clock.Now())
	if err != nil {
		return nil, grpcError(sessionCode(err), err)
	}
	return &pb.ChallengeResponse{Nonce: c.Nonce, ExpiresAtUnixMs: c.ExpiresAt.UnixMilli()}, nil
}

// OpenSession is the OpenSession RPC: api_key and a fresh challenge signed by the identity key, for a
// confirmed, unrevoked node, mint a session token valid for SessionTTL.
func (r *Registry) OpenSession(ctx context.Context, req *pb.OpenSessionRequest) (*pb.SessionToken, error) {
	rec, err := r.activeRecord(req.GetNodeId())
	if err == nil {
		var tok *pb.SessionToken
		if tok, err = r.svc.OpenSession(rec, req, r.cfg.SessionTTL, r.cfg.Clock.Now()); err == nil {
			return tok, nil
		}
	}
	r.event(ctx, store.SecurityEvent{Kind: "open_session", Node: req.GetNodeId(), Result: "refused", Reason: err.Error()})
	return nil, grpcError(sessionCode(err), err)
}

// VerifySession checks a stream's session token: authentic, not expired, and its node confirmed and not
// revoked. It returns the node and when the token expires.
func (r *Registry) VerifySession(ctx context.Context, token string) (nodeID string, expires time.Time, err error) {
	nodeID, expires, err = r.svc.VerifySessionUntil(token, r.cfg.Clock.Now())
	if err == nil {
		_, err = r.activeRecord(nodeID)
	}
	if err != nil {
		r.event(ctx, store.SecurityEvent{Kind: "session", Node: nodeID, Result: "refused", Reason: err.Error()})
		return "", time.Time{}, err
	}
	return nodeID, expires, nil
}
