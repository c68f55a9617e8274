package cloudcluster

import "errors"

var (
	// ErrConfig: a configuration an operator must fix.
	ErrConfig = errors.New("invalid cloud cluster config")
	// ErrNotStarted: the member is not started (or already stopped).
	ErrNotStarted = errors.New("cloud cluster member not started")
	// ErrRequest: a grain request failed (member unreachable, timeout) or the grain refused it.
	ErrRequest = errors.New("cloud cluster request failed")
	// ErrInvalid: a malformed request (bad node id, empty command id).
	ErrInvalid = errors.New("invalid cluster request")
)
