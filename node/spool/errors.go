package spool

import "errors"

var (
	// ErrFull: a telemetry batch was refused because the spool is at MaxBytes and nothing older can be
	// downsampled or dropped (what is left are events that are never dropped). The samples are counted in
	// hashfleet_node_spool_dropped_samples_total{reason="refused"}.
	ErrFull = errors.New("spool full: command log and audit events fill it; new telemetry refused")
	// ErrClosed: the spool was used after Close.
	ErrClosed = errors.New("spool closed")
	// ErrBadBatch: a batch whose kind, payload and seq do not agree.
	ErrBadBatch = errors.New("malformed batch")
	// ErrCorrupt: a record the spool wrote cannot be read back.
	ErrCorrupt = errors.New("spool record corrupt")
)
