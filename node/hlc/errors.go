package hlc

import "errors"

var (
	// ErrRemoteAhead: a remote timestamp is further ahead of the local wall clock than Config.MaxOffset; it is
	// not merged, so one peer with a broken clock cannot drag this node's timestamps into the future.
	ErrRemoteAhead = errors.New("remote timestamp too far ahead of the local clock")
	// ErrInvalidConfig: a Config an operator must fix.
	ErrInvalidConfig = errors.New("invalid hlc config")
)
