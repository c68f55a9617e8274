package whatsminer

import "errors"

// Errors of this driver; each is also wrapped together with the miners sentinel that classifies it.
var (
	// ErrBadPassword: the miner refused a token freshly derived from the configured password.
	ErrBadPassword = errors.New("whatsminer refused the admin password")
	// errTokenCheck: the miner answered 135, check token error (v2).
	errTokenCheck = errors.New("check token error (135)")
	// errPermission: the miner answered -4, permission denied: the token did not check (v3).
	errPermission = errors.New("permission denied (-4)")
)
