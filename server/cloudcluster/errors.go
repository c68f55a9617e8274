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
	// ErrUnknownMiners: a command names miners that are not registered to a node of the org.
	ErrUnknownMiners = errors.New("unknown miners")
	// ErrConflict: an idempotency key already names a different command.
	ErrConflict = errors.New("idempotency key names another command")
	// ErrNotFound: no such command or miner.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the cloud has no shared command store (org commands need server/pgstore).
	ErrUnavailable = errors.New("org commands need the shared store")
	// ErrKeysUnavailable: this member cannot change the command keys (no shared secrets, or a store that
	// offers no compare-and-set of secret rows or no node records).
	ErrKeysUnavailable = errors.New("command keys cannot be changed on this member")
	// ErrKeyConflict: the command keys changed under the request (another member rotated first), or the
	// request would leave no key to sign with (revoking the active key).
	ErrKeyConflict = errors.New("command key conflict")
	// ErrUnknownKey: no such command key id in the org's key set.
	ErrUnknownKey = errors.New("unknown command key")
)
