package curtail

// StartEvent asks the CurtailActor to start, schedule or update an event (see Begin). It is answered with
// *EventReply.
type StartEvent struct{ Event Event }

// StopEvent asks the CurtailActor to stop an event (see End). It is answered with *EventReply.
type StopEvent struct {
	EventID string
	// Reason is recorded in the outcome ("stopped by user:alice", "schedule evening ended").
	Reason string
}

// EventReply answers StartEvent and StopEvent: Err is nil or wraps ErrInvalidEvent, ErrEventActive,
// ErrUnknownEvent or ErrEventOver; Status is the state after the request.
type EventReply struct {
	EventID string
	Err     error
	Status  Status
}

// StatusRequest asks the CurtailActor for its Status (answered with a Status value).
type StatusRequest struct{}

// tick is the CurtailActor's self-scheduled reconcile.
type tick struct{ gen uint64 }
