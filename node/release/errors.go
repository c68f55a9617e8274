package release

import "errors"

// Sentinel errors of verification and key handling.
var (
	// ErrUnsigned: the artifact has no signature file next to it.
	ErrUnsigned = errors.New("release is not signed")
	// ErrMalformedSig: the signature file is not a hashfleet release signature.
	ErrMalformedSig = errors.New("malformed release signature")
	// ErrUnknownKey: the signature names a key id the verifier was not given.
	ErrUnknownKey = errors.New("release signed by an unknown key")
	// ErrBadSignature: the ed25519 signature does not verify with the named key.
	ErrBadSignature = errors.New("release signature does not verify")
	// ErrTampered: the signature verifies, but the artifact's size or SHA-256 differs from the signed one.
	ErrTampered = errors.New("release artifact does not match its signed manifest")
	// ErrVersionMismatch: the signed version is not the version expected.
	ErrVersionMismatch = errors.New("release version mismatch")
	// ErrKeyPermissions: a private key file is readable by group or others.
	ErrKeyPermissions = errors.New("private key file is readable by group or others")
)
