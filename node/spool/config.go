package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// DirName is the spool's directory under the node's data directory: <data-dir>/spool.
const DirName = "spool"

// Config sizes and wires a Spool. Byte sizes are logical: the stored batches plus their keys and meta
// records, which is what the bound applies to. Badger's files run somewhat larger until compaction drops
// acked batches (Stats.DiskBytes shows the on-disk figure).
type Config struct {
	// Dir is the spool's own Badger directory (the node uses <data-dir>/spool, see DirName). "" keeps the spool in memory:
	// tests only, nothing survives Close.
	Dir string
	// MaxBytes bounds what the spool holds. Default 1 GiB: at the measured ≈0.30 MB per miner-hour of raw 5 s
	// samples (docs/BENCHMARKS.md, "Spool"), 1,000 miners for ≈3.5 h raw, about 12 times longer once
	// downsampled to minute aggregates. On disk Badger's block compression makes it ≈6 times smaller.
	// Minimum 1 MiB.
	MaxBytes int64
	// ShedToBytes is where shedding stops once MaxBytes is crossed, so downsampling runs in big steps rather
	// than once per batch. Default (0) 90% of MaxBytes; at most MaxBytes.
	ShedToBytes int64
	// DownsampleStep is how many bytes of raw telemetry one downsample step reads at least (it then reads on to
	// the next minute boundary). Larger steps merge more samples per miner-minute and run less often; the step
	// holds the spool's lock while it runs. Default 32 MiB (≈8 minutes of a 1,000-miner site).
	DownsampleStep int64
	// AggregateWindow is the bucket downsampling aggregates each miner's samples into. Default 1m.
	AggregateWindow time.Duration
	// AckFlushEvery: acked batches are deleted from disk in groups of this many (or with the next Append) rather
	// than one synced write per ack. A crash forgets at most this many acks; those batches are sent again and
	// the cloud drops them as duplicates. Default 64.
	AckFlushEvery int
	// CacheBytes keeps recently appended batches decoded in memory so the batcher's Next right after Append (the
	// online path) reads nothing back from disk. Default 8 MiB; 0 disables the cache.
	CacheBytes int64
	// MemTableSize is Badger's memtable size in bytes. One transaction may hold 15% of it, so it must fit the
	// largest batch. Default 16 MiB (2.4 MiB per transaction).
	MemTableSize int64
	// ProgressLogInterval is how often a draining backlog is logged with its progress. Default 10s.
	ProgressLogInterval time.Duration

	// Clock stamps entries (oldest-entry age) and paces progress logs. Default clock.Real().
	Clock clock.Clock
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the spool's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults documented on Config (Dir is the caller's).
func DefaultConfig() Config {
	return Config{
		MaxBytes:            1 << 30,
		DownsampleStep:      32 << 20,
		AggregateWindow:     time.Minute,
		AckFlushEvery:       64,
		CacheBytes:          8 << 20,
		MemTableSize:        16 << 20,
		ProgressLogInterval: 10 * time.Second,
	}
}

const minMaxBytes = 1 << 20

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBytes < minMaxBytes {
		errs = append(errs, fmt.Errorf("spool: max bytes %d is below the minimum %d (1 MiB)", c.MaxBytes, minMaxBytes))
	}
	if c.ShedToBytes < 0 || c.ShedToBytes > c.MaxBytes {
		errs = append(errs, fmt.Errorf("spool: shed-to bytes %d must be between 0 (90%% of max) and max bytes %d", c.ShedToBytes, c.MaxBytes))
	}
	if c.DownsampleStep < 1<<10 {
		errs = append(errs, fmt.Errorf("spool: downsample step %d bytes must be at least 1 KiB", c.DownsampleStep))
	}
	if c.AggregateWindow < time.Second {
		errs = append(errs, fmt.Errorf("spool: aggregate window %s must be at least 1s", c.AggregateWindow))
	}
	if c.AckFlushEvery < 1 {
		errs = append(errs, fmt.Errorf("spool: ack flush group %d must be at least 1", c.AckFlushEvery))
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("spool: cache bytes %d must not be negative (0 disables the cache)", c.CacheBytes))
	}
	if c.MemTableSize < 4<<20 {
		errs = append(errs, fmt.Errorf("spool: memtable size %d must be at least 4 MiB", c.MemTableSize))
	}
	if c.ProgressLogInterval <= 0 {
		errs = append(errs, fmt.Errorf("spool: progress log interval %s must be positive", c.ProgressLogInterval))
	}
	return errors.Join(errs...)
}

func (c Config) shedTo() int64 {
	if c.ShedToBytes > 0 {
		return c.ShedToBytes
	}
	return c.MaxBytes / 10 * 9
}

// maxTxnBytes is what one Badger transaction may hold with this memtable size (Badger's own 15% rule), with a
// margin for entry overhead.
func (c Config) maxTxnBytes() int64 { return c.MemTableSize * 15 / 100 * 9 / 10 }
