package localui

import "errors"

// Errors a Site returns (wrapped, with context) so the UI can answer with the right status. Anything else a
// Site returns is shown to the operator as "the node could not ...: <message>" with status 502.
var (
	// ErrUnknownMiner: no such miner on this node (404).
	ErrUnknownMiner = errors.New("no such miner on this node")
	// ErrIdempotencyKeyReused: the idempotency key was already used for a different request (409). The same
	// request with the same key is not an error: Submit returns the first command's id.
	ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different command")
	// ErrRefused: the node refuses the command as a whole, e.g. it is self-fenced or not the lease holder
	// (409); the wrapping error says why.
	ErrRefused = errors.New("the node refused the command")
)

// Errors of this package.
var (
	// ErrInvalidRequest: a command request the UI refuses before it reaches the Site (400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrWeakPassword: SetLocalAdmin refused the password; the wrapping error says which rule it breaks.
	ErrWeakPassword = errors.New("password too weak")
	// ErrInvalidUser: SetLocalAdmin refused the user name.
	ErrInvalidUser = errors.New("invalid user name")
	// ErrNoLocalAdmin: no local-admin credential has been set in the directory.
	ErrNoLocalAdmin = errors.New("no local-admin credential set (run: hashfleet node set-local-admin)")
	// ErrCorrupt: a credential, certificate or key file is not one this package wrote.
	ErrCorrupt = errors.New("corrupt local UI file")
	// ErrInvalidConfig: a Config an operator must fix.
	ErrInvalidConfig = errors.New("invalid local UI config")
	// ErrAlreadyStarted / ErrNotStarted: Start called twice, or Stop/Addr before Start.
	ErrAlreadyStarted = errors.New("local UI already started")
	ErrNotStarted     = errors.New("local UI not started")
)
