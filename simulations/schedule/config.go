package schedule

import (
	"errors"
	"fmt"
	"time"
)

// Site is one site of the simulated fleet.
type Site struct {
	Name string `json:"name"`
	// Nodes are the site's nodes: one, or two for a warm-standby pair.
	Nodes []string `json:"nodes"`
	// Miners are the site's miners (MinerHang picks from them).
	Miners []string `json:"miners,omitempty"`
}

// Pair reports whether the site runs a warm-standby pair.
func (s Site) Pair() bool { return len(s.Nodes) == 2 }

// Topology is what faults can target.
type Topology struct {
	Sites []Site `json:"sites"`
}

// Config is a schedule's recipe. Durations are trial time from the start.
type Config struct {
	// Seed makes the schedule; same Config, same Schedule.
	Seed int64
	// Duration is the trial's length. Default 2m.
	Duration time.Duration
	// Weights are the relative chances of each kind; kinds absent or at 0 never happen. Required.
	Weights map[Kind]int
	// Topology is what faults target. Required.
	Topology Topology
	// Warmup: no fault starts before it. Default 10s (the site comes up and the lease is granted).
	Warmup time.Duration
	// Settle: no fault is active during the last Settle of the trial, so everything heals, reconnects
	// and backfills before the oracles check. Default 20s.
	Settle time.Duration
	// MinGap, MaxGap space fault starts, and a fault that has to wait for another to end (MaxConcurrent,
	// or a conflict) starts that much after it: each gap is drawn from [MinGap, MaxGap]. Defaults 2s, 10s.
	MinGap, MaxGap time.Duration
	// MinFault, MaxFault bound how long a fault lasts. Defaults 3s, 20s. A fault is cut short to end by
	// the start of Settle, but never below MinFault (then it is not scheduled).
	MinFault, MaxFault time.Duration
	// MaxConcurrent is how many faults may be active at once (on different sites, or a site and the
	// cloud). Default 1.
	MaxConcurrent int
	// ActiveShare is the chance that a node fault at a pair's site targets the active rather than the
	// standby. Default 0.7; 1 targets only the active.
	ActiveShare float64
	// GracefulShare is the chance that a kill is graceful. Default 0.5; 0 makes every kill abrupt. Set
	// NoGraceful to get 0 (the zero value means the default).
	GracefulShare float64
	NoGraceful    bool
	// MinDelay, MaxDelay bound GatewayDelay's delay; its jitter is up to a quarter of it. Defaults 50ms, 2s.
	MinDelay, MaxDelay time.Duration
	// MinProbability, MaxProbability bound the gateway loss, duplication and reordering chances.
	// Defaults 0.05, 0.5.
	MinProbability, MaxProbability float64
	// MaxOffset bounds a ClockSkew step either way; MaxDriftPPM its drift either way. Defaults 2s, 500 ppm.
	MaxOffset   time.Duration
	MaxDriftPPM float64
}

// Defaults; see Config.
const (
	DefaultDuration       = 2 * time.Minute
	DefaultWarmup         = 10 * time.Second
	DefaultSettle         = 20 * time.Second
	DefaultMinGap         = 2 * time.Second
	DefaultMaxGap         = 10 * time.Second
	DefaultMinFault       = 3 * time.Second
	DefaultMaxFault       = 20 * time.Second
	DefaultActiveShare    = 0.7
	DefaultGracefulShare  = 0.5
	DefaultMinDelay       = 50 * time.Millisecond
	DefaultMaxDelay       = 2 * time.Second
	DefaultMinProbability = 0.05
	DefaultMaxProbability = 0.5
	DefaultMaxOffset      = 2 * time.Second
	DefaultMaxDriftPPM    = 500
)

// DefaultConfig returns the defaults; Seed, Weights and Topology are the caller's.
func DefaultConfig() Config {
	return Config{
		Duration: DefaultDuration, Warmup: DefaultWarmup, Settle: DefaultSettle,
		MinGap: DefaultMinGap, MaxGap: DefaultMaxGap, MinFault: DefaultMinFault, MaxFault: DefaultMaxFault,
		MaxConcurrent: 1, ActiveShare: DefaultActiveShare, GracefulShare: DefaultGracefulShare,
		MinDelay: DefaultMinDelay, MaxDelay: DefaultMaxDelay,
		MinProbability: DefaultMinProbability, MaxProbability: DefaultMaxProbability,
		MaxOffset: DefaultMaxOffset, MaxDriftPPM: DefaultMaxDriftPPM,
	}
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setD := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setF := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	setD(&c.Duration, d.Duration)
	setD(&c.Warmup, d.Warmup)
	setD(&c.Settle, d.Settle)
	setD(&c.MinGap, d.MinGap)
	setD(&c.MaxGap, d.MaxGap)
	setD(&c.MinFault, d.MinFault)
	setD(&c.MaxFault, d.MaxFault)
	setD(&c.MinDelay, d.MinDelay)
	setD(&c.MaxDelay, d.MaxDelay)
	setD(&c.MaxOffset, d.MaxOffset)
	setF(&c.ActiveShare, d.ActiveShare)
	setF(&c.MinProbability, d.MinProbability)
	setF(&c.MaxProbability, d.MaxProbability)
	setF(&c.MaxDriftPPM, d.MaxDriftPPM)
	if c.GracefulShare == 0 && !c.NoGraceful {
		c.GracefulShare = d.GracefulShare
	}
	if c.NoGraceful {
		c.GracefulShare = 0
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = d.MaxConcurrent
	}
	return c
}

// Validate reports a config no schedule can be made from, with the defaults applied to zero fields.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...))
	}
	if c.Warmup+c.Settle+c.MinFault > c.Duration {
		add("duration %s leaves no room for a %s fault after warmup %s and before settle %s", c.Duration, c.MinFault, c.Warmup, c.Settle)
	}
	for name, d := range map[string]time.Duration{"warmup": c.Warmup, "settle": c.Settle, "min gap": c.MinGap, "min fault": c.MinFault, "min delay": c.MinDelay, "max offset": c.MaxOffset} {
		if d < 0 {
			add("%s %s is negative", name, d)
		}
	}
	if c.MinGap <= 0 {
		add("min gap %s must be positive", c.MinGap)
	}
	if c.MinGap > c.MaxGap || c.MinFault > c.MaxFault || c.MinDelay > c.MaxDelay || c.MinProbability > c.MaxProbability {
		add("a minimum is above its maximum (gap %s–%s, fault %s–%s, delay %s–%s, probability %v–%v)",
			c.MinGap, c.MaxGap, c.MinFault, c.MaxFault, c.MinDelay, c.MaxDelay, c.MinProbability, c.MaxProbability)
	}
	if c.MinFault <= 0 {
		add("min fault %s must be positive", c.MinFault)
	}
	if c.MaxConcurrent < 1 {
		add("max concurrent %d must be at least 1", c.MaxConcurrent)
	}
	for name, v := range map[string]float64{"active share": c.ActiveShare, "graceful share": c.GracefulShare, "min probability": c.MinProbability, "max probability": c.MaxProbability} {
		if v < 0 || v > 1 {
			add("%s %v is not in [0, 1]", name, v)
		}
	}
	if c.MaxDriftPPM < 0 || c.MaxDriftPPM >= 1e6 {
		add("max drift %v ppm is not in [0, 1e6)", c.MaxDriftPPM)
	}
	errs = append(errs, c.validateTopology()...)
	return errors.Join(errs...)
}

func (c Config) validateTopology() []error {
	var errs []error
	add := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, a...)...))
	}
	total := 0
	for k, w := range c.Weights {
		if !k.valid() {
			add("unknown fault kind %q", k)
		}
		if w < 0 {
			add("weight %d for %s is negative", w, k)
		}
		total += max(w, 0)
	}
	if total == 0 {
		add("no fault kind has a weight")
	}
	names := map[string]bool{}
	pairs, miners := 0, 0
	for _, s := range c.Topology.Sites {
		switch {
		case s.Name == "":
			add("a site has no name")
		case names[s.Name]:
			add("site %q is listed twice", s.Name)
		}
		names[s.Name] = true
		if n := len(s.Nodes); n < 1 || n > 2 {
			add("site %q has %d nodes: one, or two for a pair", s.Name, n)
		}
		if s.Pair() {
			pairs++
		}
		miners += len(s.Miners)
	}
	needs := func(k Kind, ok bool, what string) {
		if c.Weights[k] > 0 && !ok {
			add("%s has a weight but %s", k, what)
		}
	}
	for _, k := range Kinds() {
		if k != KillCloud && k != LANPair && k != MinerHang && k != TransferLease {
			needs(k, len(c.Topology.Sites) > 0, "the topology has no site")
		}
	}
	needs(LANPair, pairs > 0, "no site has a pair")
	needs(TransferLease, pairs > 0, "no site has a pair")
	needs(MinerHang, miners > 0, "no site lists miners")
	return errs
}
