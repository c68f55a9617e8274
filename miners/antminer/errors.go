package antminer

import "errors"

var (
	// ErrSchemeMismatch: the driver spoke HTTP to an HTTPS server or TLS to a plain HTTP one. It is always
	// wrapped together with miners.ErrUnreachable; fix Config.Scheme.
	ErrSchemeMismatch = errors.New("http/https mismatch")
	// ErrBadCredentials: the web CGI refused the digest username and password. Wrapped with miners.ErrRefused.
	ErrBadCredentials = errors.New("web credentials refused")
)
