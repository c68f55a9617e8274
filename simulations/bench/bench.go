package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Suite is one benchmark. Run measures and returns what it found; it stops everything it started before
// returning, error or not.
type Suite interface {
	Name() string
	// Describe is one line for help text.
	Describe() string
	Run(ctx context.Context, o Options, prog Progress) (Result, error)
}

// Suites returns every suite, in the order `hashfleet bench` lists them.
func Suites() []Suite {
	return []Suite{PollSuite{}, BaselineSuite{}, FanoutSuite{}, IngestSuite{}, SpoolSuite{}, FailoverSuite{}}
}

// Lookup returns the suites with these names, in the order given; an error wrapping ErrUnknownSuite names the
// ones that do not exist.
func Lookup(names []string) ([]Suite, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w (have: %s)", ErrNoSuites, suiteNames())
	}
	var out []Suite
	var unknown []string
	for _, n := range names {
		i := slices.IndexFunc(Suites(), func(s Suite) bool { return s.Name() == n })
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, Suites()[i])
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %s (have: %s)", ErrUnknownSuite, strings.Join(unknown, ", "), suiteNames())
	}
	return out, nil
}

func suiteNames() string {
	var n []string
	for _, s := range Suites() {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// Run runs the named suites one after the other with options o (zero fields take their defaults), prints
// progress and then each suite's table to out, and writes the report to jsonPath unless it is "". When a suite
// fails, the report holds the suites that finished and Run returns the error.
func Run(ctx context.Context, names []string, o Options, out io.Writer, jsonPath string) error {
	suites, err := Lookup(names)
	if err != nil {
		return err
	}
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	rep := Report{Machine: ThisMachine(), Started: time.Now().UTC()}
	fmt.Fprintf(out, "hashfleet bench: %s on %d cores, %.1f GiB, %s, open files ≤ %d\n", strings.Join(names, ", "),
		rep.Machine.Cores, float64(rep.Machine.MemBytes)/(1<<30), rep.Machine.Go, rep.Machine.MaxOpenFiles)
	prog := newReporterProgress(out)
	var runErr error
	for _, s := range suites {
		res, err := s.Run(ctx, o, prog)
		prog.finish()
		if err != nil {
			runErr = fmt.Errorf("suite %s: %w", s.Name(), err)
			break
		}
		rep.Suites = append(rep.Suites, res)
		printTable(out, res)
	}
	if jsonPath != "" && len(rep.Suites) > 0 {
		if err := rep.writeJSON(jsonPath); err != nil {
			return errors.Join(runErr, err)
		}
		fmt.Fprintf(out, "\nreport written to %s\n", jsonPath)
	}
	return runErr
}

var nan = math.NaN()

// PollSuite is one node supervising Options.Miners simulated miners at Options.Interval.
type PollSuite struct{}

func (PollSuite) Name() string { return "poll" }

func (PollSuite) Describe() string {
	return "one node polling N simulated miners: polls vs due (lag), latency, CPU per 1,000 polls, RSS, heap per miner"
}

// Run starts the site, measures the node over one window and stops both.
func (PollSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = newResult("poll", o)
	s, err := startSite(ctx, o, res.Name, prog)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	ph, err := measure(ctx, o, s, newPoller(pollerNode), res.Name, prog, profilesFor(o, pollerNode, true))
	if err != nil {
		return res, err
	}
	ph.addTo(&res, "", true)
	res.note("CPU and memory: %s", s.scope())
	ph.addNotes(&res)
	return res, nil
}

// BaselineSuite measures the same workload three ways against one site, one after the other: the bare loop,
// the naive loop and the node; and reports the node's CPU per poll against the bare loop's.
type BaselineSuite struct{}

func (BaselineSuite) Name() string { return "baseline" }

func (BaselineSuite) Describe() string {
	return "the poll workload done by a bare driver loop, a naive goroutine-per-miner loop and the node, same site, same run: CPU per poll ratios"
}

// Run measures bare, naive and node in turn, each over its own warm-up and window.
func (BaselineSuite) Run(ctx context.Context, o Options, prog Progress) (res Result, err error) {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return res, err
	}
	res = newResult("baseline", o)
	s, err := startSite(ctx, o, res.Name, prog)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	phases := map[string]phase{}
	for _, name := range []string{pollerBare, pollerNaive, pollerNode} {
		ph, err := measure(ctx, o, s, newPoller(name), res.Name, prog, profilesFor(o, name, false))
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		phases[name] = ph
	}
	bare, naive, nd := phases[pollerBare], phases[pollerNaive], phases[pollerNode]
	res.metric("node_over_bare_cpu_per_poll", ratio(nd.cpuPerPoll(), bare.cpuPerPoll()))
	res.metric("naive_over_bare_cpu_per_poll", ratio(naive.cpuPerPoll(), bare.cpuPerPoll()))
	res.metric("node_over_naive_cpu_per_poll", ratio(nd.cpuPerPoll(), naive.cpuPerPoll()))
	res.metric("node_over_bare_heap_per_miner", ratio(nd.memPerMiner(), bare.memPerMiner()))
	res.metric("naive_over_bare_heap_per_miner", ratio(naive.memPerMiner(), bare.memPerMiner()))
	for _, ph := range []phase{bare, naive, nd} {
		ph.addTo(&res, ph.poller+"_", false)
	}
	res.note("CPU: %s; phases ran one after the other against the same simulators", s.scope())
	res.note("RSS is not compared: the phases share one process and the Go runtime keeps memory it freed; heap and stack growth after a GC are")
	for _, ph := range []phase{bare, naive, nd} {
		ph.addNotes(&res)
	}
	return res, nil
}

func newResult(name string, o Options) Result {
	r := Result{Name: name}
	r.param("miners", o.Miners)
	r.param("interval", o.Interval)
	r.param("jitter", o.Jitter)
	r.param("late_after", o.deadline())
	r.param("warmup", o.Warmup)
	r.param("duration", o.Duration)
	r.param("max_inflight", o.MaxInFlight)
	r.param("backlog_samples", o.BacklogSamples)
	if o.MemoryLimitMiB > 0 {
		r.param("memory_limit_mib", o.MemoryLimitMiB)
	}
	if o.InProcessSim {
		r.param("simulator", "in process")
	} else {
		r.param("simulator", fmt.Sprintf("%d process(es), ≤ %d miners each", o.simProcesses(), o.MinersPerSim))
	}
	return r
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return nan
	}
	return a / b
}

// cpuPerPoll is the process's CPU time per poll, in seconds.
func (ph phase) cpuPerPoll() float64 {
	if ph.lag.polls == 0 {
		return nan
	}
	return ph.cpu.Seconds() / float64(ph.lag.polls)
}

// memPerMiner is heap + stack growth per miner, in bytes.
func (ph phase) memPerMiner() float64 { return float64(ph.heapLive+ph.stack) / float64(ph.miners) }

const mb = 1 << 20

// addTo appends the phase's figures to r, names prefixed; full adds the memory detail the poll suite shows.
func (ph phase) addTo(r *Result, prefix string, full bool) {
	m := func(name string, v float64) { r.metric(prefix+name, v) }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	secs := ph.window.Seconds()
	m("polls_completed", float64(ph.lag.polls))
	m("polls_failed", float64(ph.lag.failed))
	m("polls_due", float64(ph.lag.polls+ph.lag.lagPolls))
	m("lag_polls", float64(ph.lag.lagPolls))
	m("late_polls", float64(ph.lag.late))
	m("lagging_miners", float64(ph.lag.laggingMiners))
	m("max_poll_gap_s", ph.lag.maxGap.Seconds())
	m("polls_per_s", float64(ph.lag.polls)/secs)
	m("completed_of_nominal", ratio(float64(ph.lag.polls), ph.nominal))
	m("poll_latency_p50_ms", ms(ph.p50))
	m("poll_latency_p90_ms", ms(ph.p90))
	m("poll_latency_p99_ms", ms(ph.p99))
	m("poll_latency_max_ms", ms(ph.pmax))
	m("cpu_cores", ph.cpu.Seconds()/secs)
	m("cpu_ms_per_1k_polls", ph.cpuPerPoll()*1e6)
	m("sim_cpu_cores", ph.simCPU.Seconds()/secs)
	m("machine_cpu_busy_pct", 100*ph.machineBusy)
	m("others_cpu_cores", max(0, ph.machineBusy*float64(runtime.NumCPU())-(ph.cpu+ph.simCPU).Seconds()/secs))
	if full {
		m("rss_before_mb", float64(ph.rssBefore)/mb)
		m("rss_peak_mb", float64(ph.rssPeak)/mb)
		m("rss_end_mb", float64(ph.rssEnd)/mb)
		m("heap_live_mb", float64(ph.heapLive)/mb)
		m("stack_mb", float64(ph.stack)/mb)
	}
	m("heap_per_miner_kb", float64(ph.heapLive)/float64(ph.miners)/1024)
	m("heap_stack_per_miner_kb", ph.memPerMiner()/1024)
	m("goroutines_added", float64(ph.goroutines))
	if !math.IsNaN(ph.nodePolls) {
		m("node_counted_polls", ph.nodePolls)
	}
}

func (ph phase) addNotes(r *Result) {
	if ph.lag.late > 0 {
		r.note("%s: late polls per %s of the window: %v", ph.poller, lateSlice, ph.lateBySlice)
	}
	if ph.profile != "" {
		r.note("%s: CPU profile of the window in %s", ph.poller, ph.profile)
	}
	if ph.memProfile != "" {
		r.note("%s: heap profile at the end of the window in %s", ph.poller, ph.memProfile)
	}
	if len(ph.errors) > 0 {
		r.note("%s: first errors: %s", ph.poller, strings.Join(ph.errors, " | "))
	}
}
