package store

import "errors"

var (
	// ErrNotFound: no record under that key.
	ErrNotFound = errors.New("not found")
	// ErrInvalidKey: an id that cannot be used as a key part (empty, too long, or a node id with '/').
	ErrInvalidKey = errors.New("invalid id")
	// ErrExists: a record that must be new already exists.
	ErrExists = errors.New("already exists")
)
