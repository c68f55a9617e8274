package credentials

import "errors"

// Sentinel errors. Open, Use and Reseal also return messages/sealing's sentinels (ErrBindingMismatch,
// ErrWrongKey, ErrDecrypt, ErrMalformedEnvelope, ...) wrapped with context.
var (
	// ErrInvalidConfig: the Opener is missing its node id, key or ownership check, or the key is not an
	// X25519 credential key.
	ErrInvalidConfig = errors.New("invalid credential opener config")
	// ErrNotOwner: the device is not in this node's ownership map; its credentials are not opened.
	ErrNotOwner = errors.New("device not owned by this node")
	// ErrNotRecipient: a rotation does not seal to this node, or names a recipient twice.
	ErrNotRecipient = errors.New("rotation recipients do not include this node")
)
