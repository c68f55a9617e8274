package harness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashfleet/hashfleet/simulations/schedule"
)

// Config configures one trial.
type Config struct {
	// Scenario names the fault weighting (schedule.Lookup). Required.
	Scenario string
	// Seed makes the trial's schedule, workload and attempts: same seed, same schedule.
	Seed int64
	// Schedule's timing; zero fields take Short's. Duration is the whole trial after the site came up.
	Duration, Warmup, Settle time.Duration
	MinGap, MaxGap           time.Duration
	MinFault, MaxFault       time.Duration
	MinDelay, MaxDelay       time.Duration
	// Sites is how many sites run. Default 1.
	Sites int
	// Pairs makes every site a warm-standby pair (two nodes sharing the site's miners, declared through
	// POST /api/v1/pairs) instead of one node. Default false.
	Pairs bool
	// Antminers and CGMiners per site. Defaults 2 and 2 (one of the CGMiner-only miners sits behind the hang
	// proxy).
	Antminers, CGMiners int
	// CommandInterval spaces the operator commands. Default 400ms.
	CommandInterval time.Duration
	// LocalInterval spaces the local commands on each node whose cloud link is down. Default 1s; negative:
	// none.
	LocalInterval time.Duration
	// WANIsolates makes a WAN partition of one pair member also cut it from its partner (its gossip halts,
	// healed by a clean restart): a node isolated from both networks but alive, its operator at the console.
	// Default false.
	WANIsolates bool
	// UnsafeNoSelfFence runs every pair member with self-fencing off (lease.Config.UnsafeTestNoSelfFence):
	// a deliberately broken build, for the test that proves the single-writer oracle catches it. Test-only.
	UnsafeNoSelfFence bool
	// AttemptInterval spaces the forbidden commands injected (forged, out-of-order, wrong node). Default 2s;
	// negative: none.
	AttemptInterval time.Duration
	// FinalWait bounds the wait, after the schedule, for every accepted command to reach a final state.
	// Default 30s.
	FinalWait time.Duration
	// FailoverTarget is the longest acceptable failover or recovery (oracle 5). Default 10s.
	FailoverTarget time.Duration
	// PollInterval is the nodes' poll interval. Default 300ms.
	PollInterval time.Duration
	// Parallel is how many trials Run runs at once. Default 1.
	Parallel int
	// Progress receives one line per fault and phase; nil: none.
	Progress io.Writer
	// Logger receives the components' logs. Default: discarded.
	Logger *slog.Logger
}

// Short returns the timings of a short trial (the default test suite): 7 s of schedule.
func Short() Config {
	return Config{Duration: 7 * time.Second, Warmup: 1200 * time.Millisecond, Settle: 3500 * time.Millisecond,
		MinGap: 300 * time.Millisecond, MaxGap: time.Second, MinFault: 700 * time.Millisecond, MaxFault: 1800 * time.Millisecond,
		MinDelay: 20 * time.Millisecond, MaxDelay: 300 * time.Millisecond}
}

// PairShort returns the timings of a short trial at warm-standby pairs: long enough for a failover (the
// lease's defaults take about 7 s) inside each fault and for the site to settle after it.
func PairShort() Config {
	return Config{Pairs: true, Duration: 34 * time.Second, Warmup: 3 * time.Second, Settle: 14 * time.Second,
		MinGap: time.Second, MaxGap: 3 * time.Second, MinFault: 9 * time.Second, MaxFault: 12 * time.Second,
		MinDelay: 20 * time.Millisecond, MaxDelay: 300 * time.Millisecond}
}

// Long returns the timings of a long trial (`hashfleet sim` default): 40 s of schedule.
func Long() Config {
	return Config{Duration: 40 * time.Second, Warmup: 3 * time.Second, Settle: 10 * time.Second,
		MinGap: time.Second, MaxGap: 4 * time.Second, MinFault: 2 * time.Second, MaxFault: 8 * time.Second,
		MinDelay: 20 * time.Millisecond, MaxDelay: 500 * time.Millisecond}
}

func (c Config) withDefaults() Config {
	s := Short()
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setD(&c.Duration, s.Duration)
	setD(&c.Warmup, s.Warmup)
	setD(&c.Settle, s.Settle)
	setD(&c.MinGap, s.MinGap)
	setD(&c.MaxGap, s.MaxGap)
	setD(&c.MinFault, s.MinFault)
	setD(&c.MaxFault, s.MaxFault)
	setD(&c.MinDelay, s.MinDelay)
	setD(&c.MaxDelay, s.MaxDelay)
	setD(&c.CommandInterval, 400*time.Millisecond)
	setD(&c.AttemptInterval, 2*time.Second)
	setD(&c.LocalInterval, time.Second)
	setD(&c.FinalWait, 30*time.Second)
	setD(&c.FailoverTarget, 10*time.Second)
	setD(&c.PollInterval, 300*time.Millisecond)
	if c.Parallel < 1 {
		c.Parallel = 1
	}
	if c.Sites == 0 {
		c.Sites = 1
	}
	if c.Antminers == 0 && c.CGMiners == 0 {
		c.Antminers, c.CGMiners = 2, 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration no trial can run with (defaults applied).
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if _, err := schedule.Lookup(c.Scenario); err != nil {
		errs = append(errs, err)
	}
	if c.Sites < 1 || c.Sites > 100 {
		errs = append(errs, fmt.Errorf("harness: %d sites: want 1–100", c.Sites))
	}
	if c.Antminers < 0 || c.CGMiners < 1 {
		errs = append(errs, fmt.Errorf("harness: %d Antminers and %d CGMiner-only miners per site: want at least one CGMiner-only miner (the hang miner)", c.Antminers, c.CGMiners))
	}
	if c.CommandInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("harness: command interval %s below 10ms", c.CommandInterval))
	}
	if _, err := schedule.Generate(c.scheduleConfig()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Topology is the schedule's view of the trial's sites.
func (c Config) Topology() schedule.Topology {
	c = c.withDefaults()
	var t schedule.Topology
	for i := range c.Sites {
		t.Sites = append(t.Sites, schedule.Site{Name: siteName(i), Nodes: c.nodeNames(i), Miners: []string{hangMinerID(i)}})
	}
	return t
}

// scheduleConfig is the schedule recipe of c (defaults applied by the caller or here).
func (c Config) scheduleConfig() schedule.Config {
	c = c.withDefaults()
	sc := schedule.Config{Seed: c.Seed, Duration: c.Duration, Warmup: c.Warmup, Settle: c.Settle, MinGap: c.MinGap,
		MaxGap: c.MaxGap, MinFault: c.MinFault, MaxFault: c.MaxFault, MinDelay: c.MinDelay, MaxDelay: c.MaxDelay,
		Topology: c.Topology()}
	if s, err := schedule.Lookup(c.Scenario); err == nil {
		sc = s.Apply(sc)
	}
	if !c.Pairs {
		// Sites of one node: a scenario that also weighs faults on a pair runs its other faults.
		delete(sc.Weights, schedule.LANPair)
		delete(sc.Weights, schedule.TransferLease)
	}
	return sc
}

// Schedule returns the trial's fault schedule: a function of c alone (same seed, same schedule).
func (c Config) Schedule() (schedule.Schedule, error) { return schedule.Generate(c.scheduleConfig()) }

func siteName(i int) string { return fmt.Sprintf("site%d", i+1) }

// nodeNames are site i's nodes: "node1", or "node1a" and "node1b" for a pair.
func (c Config) nodeNames(i int) []string {
	if c.Pairs {
		return []string{fmt.Sprintf("node%da", i+1), fmt.Sprintf("node%db", i+1)}
	}
	return []string{fmt.Sprintf("node%d", i+1)}
}

func minerPrefix(i int) string { return fmt.Sprintf("s%d-", i+1) }
func hangMinerID(i int) string { return minerPrefix(i) + "cgm-0" }

// nodeSourceIP is the loopback address node j of site i dials its miners from (and binds its gossip to).
func (c Config) nodeSourceIP(i, j int) string {
	if c.Pairs {
		return fmt.Sprintf("127.0.0.%d", 11+2*i+j)
	}
	return fmt.Sprintf("127.0.0.%d", 11+i)
}
