package miners

import "errors"

// Sentinel errors every driver wraps, so callers can classify failures without parsing text.
var (
	// ErrUnreachable: the miner did not accept a connection or did not answer in time.
	ErrUnreachable = errors.New("miner unreachable")
	// ErrMalformed: the miner answered, but its reply could not be read (invalid JSON, missing fields, too large).
	ErrMalformed = errors.New("malformed miner reply")
	// ErrUnsupported: this model or protocol cannot perform the requested action.
	ErrUnsupported = errors.New("unsupported by this model")
	// ErrRefused: the miner answered and refused the request (STATUS=E, HTTP 4xx, bad credentials).
	ErrRefused = errors.New("refused by miner")
)
