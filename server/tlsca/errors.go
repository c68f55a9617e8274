package tlsca

import (
	"errors"

	"github.com/hashfleet/hashfleet/actors/secretfile"
)

var (
	// ErrInvalidConfig: the Config cannot be used (see the message for the field).
	ErrInvalidConfig = errors.New("invalid tlsca config")
	// ErrInsecurePermissions: the directory or a file is accessible by group or others, or not a regular file.
	// It is secretfile.ErrInsecurePermissions, so either matches with errors.Is.
	ErrInsecurePermissions = secretfile.ErrInsecurePermissions
	// ErrIncomplete: one of the CA's key and certificate exists without the other.
	ErrIncomplete = errors.New("incomplete CA")
	// ErrCorrupt: a file cannot be decoded, holds the wrong kind of key, a key does not match its certificate,
	// or a file is too large to be one of the CA's (such an error also matches secretfile.ErrTooLarge).
	ErrCorrupt = errors.New("corrupt CA file")
	// ErrBadCAPEM: the pinned CA PEM given to ClientTLSConfig holds no usable CA certificate.
	ErrBadCAPEM = errors.New("bad pinned CA PEM")
	// ErrNotNodeCert: a client certificate carries no hashfleet node identity.
	ErrNotNodeCert = errors.New("not a hashfleet node certificate")
)
