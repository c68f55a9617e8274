package curtail

import "errors"

// Sentinel errors. Every error this package returns wraps one of them, with context (the event id, the field at
// fault), so callers classify refusals with errors.Is and show the text to operators.
var (
	// ErrInvalidEvent: an event is unusable (no id, no target, a negative kW, an end before its start).
	ErrInvalidEvent = errors.New("invalid curtailment event")
	// ErrEventActive: a new event with a future start cannot replace the event in progress; stop it first.
	ErrEventActive = errors.New("a curtailment event is already in progress")
	// ErrUnknownEvent: a stop names an event that is not the one in progress.
	ErrUnknownEvent = errors.New("no such curtailment event in progress")
	// ErrEventOver: an event whose end time has already passed.
	ErrEventOver = errors.New("curtailment event already ended")
	// ErrInvalidConfig: a Config an operator must fix (see Config.Validate).
	ErrInvalidConfig = errors.New("invalid curtailment configuration")
)
