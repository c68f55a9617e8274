package telemetry

// StatusRequest asks the batcher for its Status.
type StatusRequest struct{}

// Status is the batcher's state for UIs and tests.
type Status struct {
	LinkUp bool
	// PendingSamples / PendingEvents wait for their batch to close.
	PendingSamples, PendingEvents int
	// Backlog* are unacked batches and items in the Outbox.
	BacklogTelemetryBatches, BacklogSamples int
	BacklogEventBatches, BacklogEvents      int
	// InFlight* are batches sent and not yet acked.
	InFlightTelemetry, InFlightEvents int
}

// Flush closes the open batches now (shutdown, tests).
type Flush struct{}

type flushTick struct{ gen uint64 }

// paceTick resumes sending on a stream the ReplayRate held back.
type paceTick struct{ kind Kind }
