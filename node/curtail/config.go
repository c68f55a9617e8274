package curtail

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config tunes curtailment. An event in progress keeps the Config it started with (State.Config).
type Config struct {
	// Order is how miners are chosen when the event does not say. Default OrderLeastEfficient.
	Order Order
	// PriorityTags orders miners for OrderPriority: miners tagged PriorityTags[0] are curtailed first.
	PriorityTags []string

	// StepKW bounds the power change commanded in one ramp step, in kW (down when curtailing, up when
	// releasing). 0 means no kW bound (StepMiners must then be set). A single miner whose own change is
	// larger than StepKW still goes, alone in its step. Default 250 kW.
	StepKW float64
	// StepMiners bounds how many miners one ramp step commands. 0 means no bound. Default 0.
	StepMiners int
	// StepInterval is the time between ramp steps. A site's fastest power change is thus
	// StepKW / StepInterval (default 250 kW per 30 s = 500 kW/min). Default 30s.
	StepInterval time.Duration

	// ToleranceKW and TolerancePct make the site tolerance: max(ToleranceKW, TolerancePct% of the target).
	// A limit is achieved when the scope draws at most target + tolerance; more miners are chosen only once
	// the projected draw exceeds target + tolerance/2, so noise does not ratchet curtailment up.
	// Defaults 5 kW and 1%.
	ToleranceKW  float64
	TolerancePct float64
	// MinerToleranceW and MinerTolerancePct make a miner's tolerance: a curtailed miner is verified when it
	// draws at most expected + max(MinerToleranceW, MinerTolerancePct% of its draw before). Defaults 50 W, 5%.
	MinerToleranceW   float64
	MinerTolerancePct float64
	// SleepDrawFraction is the draw expected of a sleeping miner, as a fraction of its draw before (control
	// board and fans). Default 0.02.
	SleepDrawFraction float64

	// SettleTime is how long after a command a miner's reported power is taken as its answer: only a sample
	// read at least SettleTime after the command verifies it. Default 60s.
	SettleTime time.Duration
	// RetryBackoff is the wait before the first retry of a straggler (a miner whose power did not follow its
	// command); each further retry doubles it, up to MaxRetryBackoff. Defaults 30s and 5m.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// MaxRetries is how many times a straggler is retried before it is given up on (and, while curtailing,
	// replaced by another miner). Default 5.
	MaxRetries int
	// GiveUpAfter is how long a release waits for a miner that is unreachable before giving up on it (the
	// event cannot end while it waits). Default 30m.
	GiveUpAfter time.Duration

	// TickInterval is how often the CurtailActor reconciles. Default 5s.
	TickInterval time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Order:             OrderLeastEfficient,
		StepKW:            250,
		StepInterval:      30 * time.Second,
		ToleranceKW:       5,
		TolerancePct:      1,
		MinerToleranceW:   50,
		MinerTolerancePct: 5,
		SleepDrawFraction: 0.02,
		SettleTime:        60 * time.Second,
		RetryBackoff:      30 * time.Second,
		MaxRetryBackoff:   5 * time.Minute,
		MaxRetries:        5,
		GiveUpAfter:       30 * time.Minute,
		TickInterval:      5 * time.Second,
	}
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// Validate reports a configuration an operator must fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("curtail: "+format+": %w", append(a, ErrInvalidConfig)...))
	}
	if c.Order < OrderDefault || c.Order > OrderPriority {
		bad("order %v is unknown", c.Order)
	}
	if c.Order == OrderPriority && len(c.PriorityTags) == 0 {
		bad("order by priority needs priority tags")
	}
	if !finiteNonNeg(c.StepKW) || c.StepMiners < 0 {
		bad("step %v kW / %d miners must not be negative", c.StepKW, c.StepMiners)
	}
	if c.StepKW == 0 && c.StepMiners == 0 {
		bad("a ramp step needs a bound: set step kW or step miners")
	}
	if c.StepInterval <= 0 {
		bad("step interval %s must be positive", c.StepInterval)
	}
	if !finiteNonNeg(c.ToleranceKW) || !finiteNonNeg(c.TolerancePct) || c.TolerancePct > 50 {
		bad("site tolerance %v kW / %v%% must be ≥ 0 (and the percentage at most 50)", c.ToleranceKW, c.TolerancePct)
	}
	if !finiteNonNeg(c.MinerToleranceW) || !finiteNonNeg(c.MinerTolerancePct) || c.MinerTolerancePct > 50 {
		bad("miner tolerance %v W / %v%% must be ≥ 0 (and the percentage at most 50)", c.MinerToleranceW, c.MinerTolerancePct)
	}
	if !(c.SleepDrawFraction >= 0 && c.SleepDrawFraction < 0.5) {
		bad("sleep draw fraction %v must be in [0, 0.5)", c.SleepDrawFraction)
	}
	if c.SettleTime <= 0 {
		bad("settle time %s must be positive", c.SettleTime)
	}
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		bad("retry backoff %s must be positive and at most the maximum backoff %s", c.RetryBackoff, c.MaxRetryBackoff)
	}
	if c.MaxRetries < 0 {
		bad("max retries %d must not be negative", c.MaxRetries)
	}
	if c.GiveUpAfter <= 0 {
		bad("give-up time %s must be positive", c.GiveUpAfter)
	}
	if c.TickInterval <= 0 {
		bad("tick interval %s must be positive", c.TickInterval)
	} else if c.TickInterval > c.StepInterval && c.StepInterval > 0 {
		bad("tick interval %s must not exceed the step interval %s", c.TickInterval, c.StepInterval)
	}
	return errors.Join(errs...)
}

// siteTolerance is the site tolerance for a target of targetW watts.
func (c Config) siteTolerance(targetW float64) float64 {
	return math.Max(c.ToleranceKW*1000, c.TolerancePct/100*targetW)
}

// minerTolerance is a miner's tolerance given its draw before curtailment.
func (c Config) minerTolerance(prevW float64) float64 {
	return math.Max(c.MinerToleranceW, c.MinerTolerancePct/100*prevW)
}

// backoff is the wait before retry number attempt (1-based).
func (c Config) backoff(attempt int) time.Duration {
	d := c.RetryBackoff
	for i := 1; i < attempt && d < c.MaxRetryBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxRetryBackoff)
}
