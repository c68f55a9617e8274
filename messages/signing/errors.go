package signing

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of them, with context (the key id,
// the field at fault), so callers classify refusals with errors.Is and show the text to operators.
var (
	// ErrMalformedCommand: the command is nil, or its payload cannot be decoded where it must be.
	ErrMalformedCommand = errors.New("malformed command")
	// ErrBadSignature: the signature does not verify over the command's canonical bytes with the named key
	// (tampered field, wrong key, missing or truncated signature).
	ErrBadSignature = errors.New("bad command signature")
	// ErrUnknownKey: the key id is not in the trust store (or not held by the issuer).
	ErrUnknownKey = errors.New("unknown command key")
	// ErrRevokedKey: the key id was revoked; it is refused forever, even if announced again.
	ErrRevokedKey = errors.New("revoked command key")
	// ErrKeyNotYetValid: the key's validity start is in the future.
	ErrKeyNotYetValid = errors.New("command key not yet valid")
	// ErrKeyRetired: the key's retirement time has passed.
	ErrKeyRetired = errors.New("command key retired")
	// ErrWrongOrg: the key id or key record belongs to another org than the trust store's.
	ErrWrongOrg = errors.New("command key of another org")
	// ErrMalformedKey: a key record is unusable (bad key id, wrong public or private key length).
	ErrMalformedKey = errors.New("malformed command key")
	// ErrNoValidityStart: an announced key has no validity start (valid_from_unix_ms <= 0).
	ErrNoValidityStart = errors.New("announced key has no validity start")
	// ErrBadRetirement: an announcement's retirement schedule is unusable (retires the announced key itself,
	// has no time, or retires the old key before the new one becomes valid).
	ErrBadRetirement = errors.New("bad key retirement schedule")
	// ErrKeyConflict: a key id is already bound to a different public key.
	ErrKeyConflict = errors.New("key id bound to a different public key")
	// ErrPayloadMismatch: the announcement or revocation given is not the one the signed command carries.
	ErrPayloadMismatch = errors.New("key message is not the one the signed command carries")
	// ErrNoActiveKey: the issuer has no key it may sign with now, or the operation would leave it without one.
	ErrNoActiveKey = errors.New("no active command key")
	// ErrBadOverlap: a rotation overlap must be positive.
	ErrBadOverlap = errors.New("rotation overlap must be positive")
	// ErrEmptyOrg: an org id is required.
	ErrEmptyOrg = errors.New("empty org id")
)
