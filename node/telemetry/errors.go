package telemetry

import "errors"

var (
	// ErrOutboxFull is logged (with the count) when the Outbox drops its oldest batches to stay in bounds.
	ErrOutboxFull = errors.New("outbox full: oldest batches dropped")
	// ErrSeqOrder: a batch was appended with a seq not above the last one of its kind.
	ErrSeqOrder = errors.New("batch seq not above the previous batch")
)
