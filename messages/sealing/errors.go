package sealing

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of them, with context (the device, the
// purpose, the field at fault), never with any plaintext.
var (
	// ErrInvalidKey: a recipient public key or a private key is not an X25519 / DHKEM(X25519, HKDF-SHA256)
	// key (wrong curve, wrong length, nil).
	ErrInvalidKey = errors.New("invalid credential key")
	// ErrInvalidBinding: a node id, device id or purpose is empty, too long, or holds characters it may not.
	ErrInvalidBinding = errors.New("invalid envelope binding")
	// ErrPlaintextSize: the plaintext is empty or longer than MaxPlaintextLen.
	ErrPlaintextSize = errors.New("credential plaintext size out of range")
	// ErrMalformedEnvelope: the envelope cannot be decoded, or a field has an impossible length.
	ErrMalformedEnvelope = errors.New("malformed credential envelope")
	// ErrUnsupportedVersion: the envelope's version byte is not one this build reads.
	ErrUnsupportedVersion = errors.New("unsupported credential envelope version")
	// ErrUnsupportedSuite: the envelope names another HPKE suite than X25519 / HKDF-SHA256 / AES-256-GCM.
	ErrUnsupportedSuite = errors.New("unsupported HPKE suite")
	// ErrBindingMismatch: the envelope says it is for another node, device or purpose than the caller expects.
	ErrBindingMismatch = errors.New("credential envelope bound to another node, device or purpose")
	// ErrWrongKey: the envelope was sealed to another credential key than the one given (another node, or this
	// node before it changed its key).
	ErrWrongKey = errors.New("credential envelope sealed to another key")
	// ErrDecrypt: HPKE authentication failed: the ciphertext or encapsulated key was altered, or the envelope
	// was sealed under another binding than the one expected.
	ErrDecrypt = errors.New("credential envelope does not decrypt")
)
