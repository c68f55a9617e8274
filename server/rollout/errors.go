package rollout

import "errors"

var (
	// ErrInvalid: the rollout request is malformed.
	ErrInvalid = errors.New("invalid rollout")
	// ErrNotFound: no rollout with that id.
	ErrNotFound = errors.New("rollout not found")
	// ErrStopped: the manager is stopping.
	ErrStopped = errors.New("rollout manager stopped")
)
