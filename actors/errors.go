package actors

import "errors"

var (
	// ErrTimeout: the actor did not answer a request in time.
	ErrTimeout = errors.New("actor request timed out")
	// ErrDeadActor: the request went to an actor that does not exist (stopped, never spawned).
	ErrDeadActor = errors.New("actor not running")
	// ErrUnexpectedReply: the actor answered with a message of another type than the caller expects.
	ErrUnexpectedReply = errors.New("unexpected reply type")
)
