package history

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// DirName is the history's directory under the server's data directory when it has its own Badger:
// <data-dir>/history.
const DirName = "history"

// Config sets retention, bucket closing and query limits. Zero fields take the defaults documented on each
// field (DefaultConfig returns them all); Validate reports what an operator must fix.
type Config struct {
	// Dir is the history's own Badger directory, used by Open ("" keeps it in memory: tests only). New takes
	// an open *badger.DB instead and ignores Dir.
	Dir string
	// MemTableSize is Badger's memtable size in bytes when Open opens the store. Default 16 MiB: an Append of
	// 5,000 samples is about 250 KiB of entries, far below the 15% of a memtable one transaction may hold.
	MemTableSize int64

	// RawRetention keeps full-resolution samples. Default 24h. At 5 s polls that is 17,280 samples per miner
	// (docs/BENCHMARKS.md gives the bytes per sample).
	RawRetention time.Duration
	// MinuteRetention keeps per-miner and per-group 1-minute rollups. Default 30 days (720 h).
	MinuteRetention time.Duration
	// HourRetention keeps per-miner and per-group 1-hour rollups. Default 400 days (9,600 h).
	HourRetention time.Duration

	// MinuteCloseGrace: a miner's open minute is closed (written, and added to its hour and its groups) when
	// its next sample falls in a later minute, or once the clock passes the minute's end by this much, whichever
	// comes first. A sample arriving after its minute was closed this way is kept at full resolution but left
	// out of the rollups (counted as late). Default 1h, so a node's spool replay after an outage of up to an
	// hour loses nothing. Must be shorter than RawRetention: an open minute is rebuilt from raw samples after a
	// restart.
	MinuteCloseGrace time.Duration
	// HourCloseGrace: the same for a miner's open hour. Default 48h (longer than a node's spool holds
	// downsampled data). At least MinuteCloseGrace, and shorter than MinuteRetention: an open hour is rebuilt
	// from the stored minutes after a restart.
	HourCloseGrace time.Duration
	// MaxFutureSkew refuses samples observed later than now plus this (a node with a wrong clock would
	// otherwise write history that outlives its retention and blocks the miner's later samples as out of
	// order). Default 10m.
	MaxFutureSkew time.Duration
	// StaleAfter: Live counts a miner whose newest sample is older than this as stale rather than by its state,
	// and leaves its hashrate and power out. Default 2m.
	StaleAfter time.Duration

	// MaxPoints bounds the points (steps) one query may return. Default 10,000.
	MaxPoints int
	// MaxAggregateMiners bounds the miners one Aggregate may read (it reads each one's series: at 20,000
	// miners about a second and 200 MB of garbage, docs/BENCHMARKS.md). Default 2,000; groups registered with
	// SetGroups have no bound (GroupTotals reads their rollups).
	MaxAggregateMiners int
	// AutoPoints is about how many points a query with step 0 returns: the step is the smallest of 5s, 10s,
	// 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 3h, 6h, 12h, 24h, 7d giving at most this many. Default 500.
	AutoPoints int

	// Clock is business time: sample validity, retention cut-offs of queries, bucket closing. Default
	// clock.Real(). Badger expires records by the wall clock; each record's time to live is computed in
	// business time at write (see doc.go), so a fake clock anywhere in time works.
	Clock clock.Clock
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the history's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults documented on Config (Dir is the caller's).
func DefaultConfig() Config {
	return Config{
		MemTableSize:       16 << 20,
		RawRetention:       24 * time.Hour,
		MinuteRetention:    30 * 24 * time.Hour,
		HourRetention:      400 * 24 * time.Hour,
		MinuteCloseGrace:   time.Hour,
		HourCloseGrace:     48 * time.Hour,
		MaxFutureSkew:      10 * time.Minute,
		StaleAfter:         2 * time.Minute,
		MaxPoints:          10_000,
		MaxAggregateMiners: 2_000,
		AutoPoints:         500,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.RawRetention, d.RawRetention)
	set(&c.MinuteRetention, d.MinuteRetention)
	set(&c.HourRetention, d.HourRetention)
	set(&c.MinuteCloseGrace, d.MinuteCloseGrace)
	set(&c.HourCloseGrace, d.HourCloseGrace)
	set(&c.MaxFutureSkew, d.MaxFutureSkew)
	set(&c.StaleAfter, d.StaleAfter)
	if c.MemTableSize == 0 {
		c.MemTableSize = d.MemTableSize
	}
	if c.MaxPoints == 0 {
		c.MaxPoints = d.MaxPoints
	}
	if c.MaxAggregateMiners == 0 {
		c.MaxAggregateMiners = d.MaxAggregateMiners
	}
	if c.AutoPoints == 0 {
		c.AutoPoints = min(d.AutoPoints, c.MaxPoints)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports a configuration an operator must fix. Zero fields are valid: they take the defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("history: "+f, a...)) }
	if c.MemTableSize < 4<<20 {
		bad("memtable size %d must be at least 4 MiB", c.MemTableSize)
	}
	if c.RawRetention < 10*time.Minute {
		bad("raw retention %s must be at least 10m", c.RawRetention)
	}
	if c.MinuteRetention < c.RawRetention || c.MinuteRetention < 2*time.Hour {
		bad("minute retention %s must be at least the raw retention %s and at least 2h", c.MinuteRetention, c.RawRetention)
	}
	if c.HourRetention < c.MinuteRetention {
		bad("hour retention %s must be at least the minute retention %s", c.HourRetention, c.MinuteRetention)
	}
	if c.MinuteCloseGrace < time.Second || c.MinuteCloseGrace >= c.RawRetention {
		bad("minute close grace %s must be at least 1s and shorter than the raw retention %s (open minutes are rebuilt from raw samples after a restart)",
			c.MinuteCloseGrace, c.RawRetention)
	}
	if c.HourCloseGrace < c.MinuteCloseGrace || c.HourCloseGrace >= c.MinuteRetention {
		bad("hour close grace %s must be at least the minute close grace %s and shorter than the minute retention %s (open hours are rebuilt from stored minutes after a restart)",
			c.HourCloseGrace, c.MinuteCloseGrace, c.MinuteRetention)
	}
	if c.MaxFutureSkew < 0 {
		bad("max future skew %s must not be negative", c.MaxFutureSkew)
	}
	if c.StaleAfter < 0 {
		bad("stale-after %s must be positive", c.StaleAfter)
	}
	if c.MaxPoints < 1 {
		bad("max points %d must be at least 1", c.MaxPoints)
	}
	if c.MaxAggregateMiners < 1 {
		bad("max aggregate miners %d must be at least 1", c.MaxAggregateMiners)
	}
	if c.AutoPoints < 1 || c.AutoPoints > c.MaxPoints {
		bad("auto points %d must be between 1 and max points %d", c.AutoPoints, c.MaxPoints)
	}
	return errors.Join(errs...)
}

// retention of a resolution.
func (c *Config) retention(r Resolution) time.Duration {
	switch r {
	case Raw:
		return c.RawRetention
	case Minute:
		return c.MinuteRetention
	default:
		return c.HourRetention
	}
}
