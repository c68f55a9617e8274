package api

import "errors"

var (
	// ErrUnauthorized: missing or wrong bearer token.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrBadRequest: the request cannot be understood (malformed JSON, bad query parameter, body too large).
	ErrBadRequest = errors.New("bad request")
)
