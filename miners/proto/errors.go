package proto

import "errors"

var (
	// ErrSchemeMismatch: the driver spoke HTTP to an HTTPS server or TLS to a plain HTTP one. It is always
	// wrapped together with miners.ErrUnreachable; fix Config.Scheme.
	ErrSchemeMismatch = errors.New("http/https mismatch")
	// ErrNoCredentials: the driver has neither a signing key nor a password for an endpoint that needs one.
	ErrNoCredentials = errors.New("no credentials configured")
	// ErrNotPaired: the rig refused the node's JWT and no password is configured to fall back on; pair first.
	ErrNotPaired = errors.New("rig refused the node's JWT (not paired with this node's key?)")
	// ErrBadPassword: the rig refused the login password. Wrapped with miners.ErrRefused.
	ErrBadPassword = errors.New("wrong password")
)
