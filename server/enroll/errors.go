package enroll

import "errors"

var (
	// ErrInvalidConfig: the Config or a constructor argument cannot be used.
	ErrInvalidConfig = errors.New("invalid enroll config")
	// ErrWeakSecret: the server secret is shorter than 32 bytes.
	ErrWeakSecret = errors.New("server secret too short")
	// ErrInvalidCode: the enrollment code is malformed or was never minted.
	ErrInvalidCode = errors.New("invalid enrollment code")
	// ErrCodeUsed: the code was already redeemed (by another node) or its enrollment is finished.
	ErrCodeUsed = errors.New("enrollment code already used")
	// ErrCodeExpired: the code (or the pending enrollment it started) expired.
	ErrCodeExpired = errors.New("enrollment code expired")
	// ErrCodeExists: a store already holds a code with this id.
	ErrCodeExists = errors.New("enrollment code exists")
	// ErrBadIdentityKey: an identity public key is not a 32-byte ed25519 key.
	ErrBadIdentityKey = errors.New("bad identity public key")
	// ErrBadAPIKey: the api_key does not match the stored hash.
	ErrBadAPIKey = errors.New("bad api key")
	// ErrUnknownChallenge: the nonce was never issued to this node, or was already used (replay).
	ErrUnknownChallenge = errors.New("unknown or used session challenge")
	// ErrChallengeExpired: the nonce was issued but has expired.
	ErrChallengeExpired = errors.New("session challenge expired")
	// ErrBadChallengeSignature: the challenge signature does not verify with the node's identity key.
	ErrBadChallengeSignature = errors.New("bad session challenge signature")
	// ErrTooManyChallenges: the challenge store is full.
	ErrTooManyChallenges = errors.New("too many outstanding session challenges")
	// ErrBadSession: the session token is malformed or its MAC does not verify (tampered, or another server's).
	ErrBadSession = errors.New("bad session token")
	// ErrSessionExpired: the session token is authentic but expired.
	ErrSessionExpired = errors.New("session token expired")
	// ErrUnknownNode: no node record for the node id.
	ErrUnknownNode = errors.New("unknown node")
	// ErrNodeMismatch: the request's node id or identity does not match the node record.
	ErrNodeMismatch = errors.New("node mismatch")
	// ErrNodeNotConfirmed: the operator has not confirmed the node's fingerprint yet (no api key issued).
	ErrNodeNotConfirmed = errors.New("node not confirmed")
	// ErrNodeRevoked: the node was revoked.
	ErrNodeRevoked = errors.New("node revoked")
)
