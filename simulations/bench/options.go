package bench

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Options configure every suite. Zero fields take the defaults documented here (see DefaultOptions).
type Options struct {
	// Miners is the number of simulated miners. Default 1,000.
	Miners int
	// Interval is the poll interval of every miner. Default 5s up to 20,000 miners, 10s above.
	Interval time.Duration
	// Jitter spreads polls: each interval is Interval ± Jitter, as the node does. Default Interval/10.
	Jitter time.Duration
	// LateSlack is how much later than Interval + Jitter a poll may start before it counts as late (timer and
	// scheduling noise). Default Interval/20 (250ms at 5s).
	LateSlack time.Duration
	// Warmup runs before the measurement window, so that every miner has been polled once (the node spreads
	// first polls over one interval). Default Interval + Jitter + 2s.
	Warmup time.Duration
	// Duration is the measurement window. Default 60s.
	Duration time.Duration

	// MaxInFlight bounds the connections open at once: the node's MaxInFlight, and the bare loop's number of
	// workers. Default 256 (the node's default).
	MaxInFlight int
	// MaxCommandsInFlight is the node's MaxCommandsInFlight (fanout): connections a command wave may open,
	// ahead of the polls. Default 0: the node's default.
	MaxCommandsInFlight int
	// BacklogSamples is the node's MaxBacklogSamples. The node runs without a cloud link, so nothing is ever
	// acked and the outbox stays full at this bound; the default of 4,000 is what a connected node holds at
	// most (8 batches of 500 in flight). The node's own default, 100,000, is what it keeps while the cloud is
	// unreachable.
	BacklogSamples int
	// MemoryLimitMiB is the node's MemoryLimit (the Go soft memory limit while it runs) in MiB; 0 leaves the
	// runtime's (GOMEMLIMIT). Only the node poller sets it.
	MemoryLimitMiB int
	// DataDir is the node's store directory; "" uses a temporary directory removed afterwards.
	DataDir string

	// InProcessSim runs the simulated miners in this process (at most 5,000), which is quicker to start but
	// puts the simulator's CPU and memory into every figure.
	InProcessSim bool
	// MinersPerSim is the most miners one simulator process serves (a listener each, plus its connections,
	// under the 20,000 open files a process may hold). Default and maximum 15,000.
	MinersPerSim int
	// SimCommand is the simulator process's command line without the fleet flags; it must accept the flags of
	// `hashfleet minersim` (--miners --per-miner-ip --base-ip --port --seed --id-prefix --devices-out) and stop
	// on SIGTERM. Default: this executable followed by "minersim" (right for the hashfleet binary and for
	// cmd/benchrun; tests re-execute themselves, see ServeSim).
	SimCommand []string
	// SimEnv is added to the simulator processes' environment.
	SimEnv []string
	// FirstNet is the second octet of the first simulator's address range: simulator k serves
	// 127.(FirstNet+k).0.1 upwards. Default 10.
	FirstNet int
	// Port is every simulated miner's port. Default 4028, the CGMiner API's.
	Port int
	// Seed varies the simulated miners and the pollers' phases. Default 1.
	Seed int64

	// CloudCommand is the cloud server process's command line without its flags (fanout, ingest); it must
	// accept the flags of ServeCloud and stop on SIGTERM. Default: this executable followed by "bench
	// serve-cloud" (right for the hashfleet binary and cmd/benchrun; tests re-execute themselves).
	CloudCommand []string
	// CloudEnv is added to the cloud process's environment.
	CloudEnv []string
	// Nodes is the number of nodes the ingest suite runs against one cloud; Miners are spread over them.
	// Default 10 (fewer when there are fewer miners).
	Nodes int
	// Trials is how many bulk commands of each action the fanout suite issues. Default 3.
	Trials int
	// SpoolSpan is the site time the spool suite spools (at Interval per miner) before replaying it all.
	// Default 10m.
	SpoolSpan time.Duration

	// CPUProfile, when set, receives a CPU profile of each measurement window (pprof format). A suite that
	// measures several pollers writes PATH.NAME for each.
	CPUProfile string
	// MemProfile, when set, receives a heap profile taken at the end of each measurement window, after a GC
	// (PATH.NAME per poller, as CPUProfile).
	MemProfile string
	// Logger receives the node's logs. Default: errors only, to stderr.
	Logger *slog.Logger
}

// Limits and defaults; see Options.
const (
	DefaultMiners       = 1000
	DefaultDuration     = 60 * time.Second
	DefaultMaxInFlight  = 256
	DefaultBacklog      = 4000
	DefaultFirstNet     = 10
	DefaultNodes        = 10
	DefaultTrials       = 3
	DefaultSpoolSpan    = 10 * time.Minute
	DefaultPort         = 4028
	MaxMinersPerSim     = 15000
	MaxInProcessMiners  = 5000
	largeSiteMiners     = 20000
	defaultInterval     = 5 * time.Second
	largeSiteInterval   = 10 * time.Second
	maxSimulatorRanges  = 255
	minWarmupAfterFirst = 2 * time.Second
)

// DefaultOptions returns the defaults for 1,000 miners.
func DefaultOptions() Options { return Options{}.withDefaults() }

func (o Options) withDefaults() Options {
	if o.Miners == 0 {
		o.Miners = DefaultMiners
	}
	if o.Interval == 0 {
		o.Interval = defaultInterval
		if o.Miners > largeSiteMiners {
			o.Interval = largeSiteInterval
		}
	}
	if o.Jitter == 0 {
		o.Jitter = o.Interval / 10
	}
	if o.LateSlack == 0 {
		o.LateSlack = o.Interval / 20
	}
	if o.Warmup == 0 {
		o.Warmup = o.Interval + o.Jitter + minWarmupAfterFirst
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.BacklogSamples == 0 {
		o.BacklogSamples = DefaultBacklog
	}
	if o.MinersPerSim == 0 {
		o.MinersPerSim = MaxMinersPerSim
	}
	if len(o.SimCommand) == 0 {
		if exe, err := os.Executable(); err == nil {
			o.SimCommand = []string{exe, "minersim"}
		}
	}
	if len(o.CloudCommand) == 0 {
		if exe, err := os.Executable(); err == nil {
			o.CloudCommand = []string{exe, "bench", "serve-cloud"}
		}
	}
	if o.Nodes == 0 {
		o.Nodes = max(1, min(DefaultNodes, o.Miners))
	}
	if o.Trials == 0 {
		o.Trials = DefaultTrials
	}
	if o.SpoolSpan == 0 {
		o.SpoolSpan = DefaultSpoolSpan
	}
	if o.FirstNet == 0 {
		o.FirstNet = DefaultFirstNet
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	return o
}

// simProcesses is the number of simulator processes the site needs (0 in process).
func (o Options) simProcesses() int {
	if o.InProcessSim {
		return 0
	}
	return (o.Miners + o.MinersPerSim - 1) / o.MinersPerSim
}

// deadline is the longest a miner may go between two polls before it owes one.
func (o Options) deadline() time.Duration { return o.Interval + o.Jitter + o.LateSlack }

// Validate reports every setting a run cannot use, in terms of the flag to change. Call it on options with
// defaults applied (Run does).
func (o Options) Validate() error {
	var errs []error
	if o.Miners < 1 {
		errs = append(errs, fmt.Errorf("miners %d must be at least 1", o.Miners))
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %s must be positive", o.Interval))
	}
	if o.Jitter < 0 || o.Jitter >= o.Interval {
		errs = append(errs, fmt.Errorf("jitter %s must be at least 0 and below the interval %s", o.Jitter, o.Interval))
	}
	if o.LateSlack < 0 {
		errs = append(errs, fmt.Errorf("late slack %s must not be negative", o.LateSlack))
	}
	if o.Warmup < 0 || o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("warm-up %s must not be negative and duration %s must be positive", o.Warmup, o.Duration))
	}
	if o.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in-flight %d must be at least 1", o.MaxInFlight))
	}
	if o.MaxCommandsInFlight < 0 {
		errs = append(errs, fmt.Errorf("max command in-flight %d must not be negative", o.MaxCommandsInFlight))
	}
	if o.MemoryLimitMiB < 0 {
		errs = append(errs, fmt.Errorf("memory limit %d MiB must not be negative", o.MemoryLimitMiB))
	}
	if o.BacklogSamples < 500 {
		errs = append(errs, fmt.Errorf("backlog samples %d must hold at least one batch of 500", o.BacklogSamples))
	}
	if o.InProcessSim && o.Miners > MaxInProcessMiners {
		errs = append(errs, fmt.Errorf("an in-process simulator serves at most %d miners, not %d: run the simulators out of process",
			MaxInProcessMiners, o.Miners))
	}
	if o.MinersPerSim < 1 || o.MinersPerSim > MaxMinersPerSim {
		errs = append(errs, fmt.Errorf("miners per simulator %d must be between 1 and %d (a listener each, under the 20,000 open files of a process)",
			o.MinersPerSim, MaxMinersPerSim))
	} else if last := o.FirstNet + o.simProcesses() - 1; o.FirstNet < 1 || last > maxSimulatorRanges-1 {
		errs = append(errs, fmt.Errorf("simulator address ranges 127.%d.x … 127.%d.x must lie within 127.1 … 127.254", o.FirstNet, last))
	}
	if !o.InProcessSim && len(o.SimCommand) == 0 {
		errs = append(errs, errors.New("no simulator command: set SimCommand (a binary that serves `minersim` flags)"))
	}
	if o.Nodes < 1 || o.Nodes > o.Miners {
		errs = append(errs, fmt.Errorf("nodes %d must be between 1 and the number of miners (%d)", o.Nodes, o.Miners))
	}
	if o.Trials < 1 {
		errs = append(errs, fmt.Errorf("trials %d must be at least 1", o.Trials))
	}
	if o.SpoolSpan < o.Interval {
		errs = append(errs, fmt.Errorf("spool span %s must be at least one interval (%s)", o.SpoolSpan, o.Interval))
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d must be between 1 and 65535", o.Port))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	return nil
}

// RegisterFlags binds o's operator-facing fields to fs, with o's current values as the defaults, so that a
// command (`hashfleet bench`, cmd/benchrun) exposes the same flags.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.Miners, "miners", o.Miners, "number of simulated miners (default 1000)")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "poll interval per miner (default 5s; 10s above 20,000 miners)")
	fs.DurationVar(&o.Jitter, "jitter", o.Jitter, "poll jitter, ± (default interval/10)")
	fs.DurationVar(&o.LateSlack, "late-slack", o.LateSlack, "lateness tolerated beyond interval+jitter before a poll counts as late (default interval/20)")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "time before the measurement window (default interval+jitter+2s)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "measurement window (default 60s)")
	fs.IntVar(&o.MaxInFlight, "max-inflight", o.MaxInFlight, "connections in flight at once: the node's MaxInFlight and the bare loop's workers (default 256)")
	fs.IntVar(&o.MaxCommandsInFlight, "max-command-inflight", o.MaxCommandsInFlight, "fanout: the node's MaxCommandsInFlight, connections a command wave may open ahead of the polls (default: the node's, 512)")
	fs.IntVar(&o.BacklogSamples, "backlog-samples", o.BacklogSamples, "node MaxBacklogSamples (default 4000, a connected node's worst case)")
	fs.IntVar(&o.MemoryLimitMiB, "memory-limit", o.MemoryLimitMiB, "node MemoryLimit in MiB: the Go soft memory limit while the node runs (default 0: GOMEMLIMIT's)")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "node store directory (default: a temporary directory)")
	fs.BoolVar(&o.InProcessSim, "in-process-sim", o.InProcessSim, "run the simulated miners in this process (≤ 5,000; CPU figures then include them)")
	fs.IntVar(&o.MinersPerSim, "miners-per-sim", o.MinersPerSim, "most miners per simulator process (default and maximum 15,000)")
	fs.IntVar(&o.FirstNet, "first-net", o.FirstNet, "simulator k serves 127.(first-net+k).0.1 upwards (default 10)")
	fs.IntVar(&o.Port, "port", o.Port, "port of every simulated miner (default 4028)")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "seed of the simulated miners and poll phases (default 1)")
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "ingest: nodes sharing the miners, one cloud (default 10)")
	fs.IntVar(&o.Trials, "trials", o.Trials, "fanout: bulk commands per action (default 3)")
	fs.DurationVar(&o.SpoolSpan, "spool-span", o.SpoolSpan, "spool: site time spooled before the replay (default 10m)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", o.CPUProfile, "write a CPU profile of each measurement window here")
	fs.StringVar(&o.MemProfile, "memprofile", o.MemProfile, "write a heap profile at the end of each measurement window here")
}
