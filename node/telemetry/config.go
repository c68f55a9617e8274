package telemetry

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes the TelemetryBatcher.
type Config struct {
	// BatchSize is the most samples in one TelemetryBatch; a full batch is sent at once. Default 500.
	BatchSize int
	// EventBatchSize is the most events in one EventBatch. Default 200.
	EventBatchSize int
	// FlushInterval is the longest a sample or event waits for its batch to fill. Default 500ms.
	//
	// It sets the latency of a site whose batches do not fill between two ticks (under BatchSize samples per
	// FlushInterval: 1,000/s at the defaults, a 5,000-miner site at 5 s polls): a sample waits up to
	// FlushInterval, half of it on average. A full batch never waits for the timer, so a shorter interval
	// costs at most 1/FlushInterval extra batches a second whatever the rate. The node's cost is small (a
	// batch ≈0.3 ms through the spool's fsync, ≈30 µs through the uplink); the cloud's is not: each batch is
	// one ingest transaction. Measured with `hashfleet bench ingest` (10 nodes × 1,000 miners, 2,000
	// samples/s; docs/BENCHMARKS.md "Batch flush interval"): 1 s gives p99 poll → queryable 1.01 s at 64 ms
	// of cloud CPU per 1,000 samples; 500ms gives 0.50 s at 65 ms; 250ms gives 0.27 s at 75–102 ms. 500ms
	// halves the latency for no measurable cloud cost. The price of any shorter interval: a long outage of a
	// small site is spooled in smaller batches, which replay in more round trips (MaxInFlight per trip).
	FlushInterval time.Duration
	// MaxInFlight is how many batches per stream may be sent and not yet acked. Default 8.
	MaxInFlight int
	// MaxBacklogSamples bounds the samples the in-memory Outbox keeps unacked (≈0.5 KiB each); beyond it the
	// oldest batches are dropped. Default 100,000 (about 50 s of a 10,000-miner site, 40 min of 200 miners).
	MaxBacklogSamples int
	// MaxBacklogEvents bounds the unacked events the in-memory Outbox keeps. Default 100,000.
	MaxBacklogEvents int
	// SeqBlock is how many batch seqs are reserved in the store at a time. Default 1000.
	SeqBlock uint64
	// ReplayRate bounds the items (samples or events) sent per second on each stream, so a node reconnecting
	// with a long backlog replays it without flooding the cloud; live batches share the budget. 0 is
	// unbounded (MaxInFlight alone limits). Default 20,000/s: 5× the live rate of a 20,000-miner site polled
	// every 5 s (it drains an hour's backlog in ≈15 min), and a 1,000-miner site's hour (720,000 samples) in
	// ≈36 s.
	ReplayRate int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{BatchSize: 500, EventBatchSize: 200, FlushInterval: 500 * time.Millisecond, MaxInFlight: 8,
		MaxBacklogSamples: 100_000, MaxBacklogEvents: 100_000, SeqBlock: 1000, ReplayRate: 20_000}
}

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 1 || c.EventBatchSize < 1 {
		errs = append(errs, fmt.Errorf("telemetry: batch sizes %d/%d must be at least 1", c.BatchSize, c.EventBatchSize))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("telemetry: flush interval %s must be positive", c.FlushInterval))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("telemetry: max in-flight batches %d must be at least 1", c.MaxInFlight))
	}
	if c.MaxBacklogSamples < c.BatchSize || c.MaxBacklogEvents < c.EventBatchSize {
		errs = append(errs, fmt.Errorf("telemetry: backlog bounds %d samples / %d events must hold at least one batch", c.MaxBacklogSamples, c.MaxBacklogEvents))
	}
	if c.ReplayRate < 0 {
		errs = append(errs, fmt.Errorf("telemetry: replay rate %d items/s must be 0 (unbounded) or positive", c.ReplayRate))
	}
	if c.SeqBlock < 1 {
		errs = append(errs, fmt.Errorf("telemetry: seq block %d must be at least 1", c.SeqBlock))
	}
	return errors.Join(errs...)
}
