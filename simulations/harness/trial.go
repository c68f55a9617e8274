package harness

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/simulations/oracle"
	"github.com/hashfleet/hashfleet/simulations/report"
	"github.com/hashfleet/hashfleet/simulations/schedule"
)

// trial is one running trial.
type trial struct {
	cfg   Config
	sched schedule.Schedule
	dir   string
	cloud *cloud
	sites []*site
	start time.Time // the schedule's zero

	mu         sync.Mutex
	spans      []report.Span
	open       map[string]int // row/kind → index of the open span in spans
	leaseEvs   []oracle.LeaseEvent
	heals      []heal         // node faults that break the link, with their heal time
	targets    map[int]target // by fault index, from its start to its heal
	att        *attacker
	progressMu sync.Mutex
}

// heal is a fault healed at At on node (the cloud: every node), after which the link must come back.
type heal struct {
	fault schedule.Fault
	nodes []string
	at    time.Time
}

// RunTrial runs one trial of cfg.Scenario with cfg.Seed and returns what the oracles found. The error is
// for a trial that could not run (a component failed to start); violations are in the Trial.
func RunTrial(ctx context.Context, cfg Config, index int) (report.Trial, error) {
	cfg = cfg.withDefaults()
	out := report.Trial{Scenario: cfg.Scenario, Index: index, Seed: cfg.Seed}
	if err := cfg.Validate(); err != nil {
		return out, err
	}
	sched, err := cfg.Schedule()
	if err != nil {
		return out, err
	}
	out.ScheduleDigest = sched.Digest()
	for _, f := range sched.Faults {
		out.Faults = append(out.Faults, f.String())
	}
	began := time.Now()
	dir, err := os.MkdirTemp("", "hashfleet-chaos-*")
	if err != nil {
		return out, fmt.Errorf("trial directory: %w", err)
	}
	defer os.RemoveAll(dir)
	t := &trial{cfg: cfg, sched: sched, dir: dir, open: map[string]int{}, targets: map[int]target{}}
	defer t.close()
	if t.cloud, err = startCloud(dir, cfg); err != nil {
		return out, err
	}
	for i := range cfg.Sites {
		s, err := startSite(i, dir, cfg, t.cloud, cfg.Seed+int64(i))
		if err != nil {
			return out, err
		}
		t.sites = append(t.sites, s)
	}
	t.progress("trial %s #%d seed %d: site up after %s; schedule %s (%d faults)", cfg.Scenario, index, cfg.Seed,
		time.Since(began).Round(time.Millisecond), sched.Digest(), len(sched.Faults))
	t.att = newAttacker(t.cloud, t.sites, cfg.AttemptInterval, cfg.Seed)
	t.att.progress = t.progress
	if cfg.AttemptInterval > 0 {
		if err := t.att.revokeOldKey(ctx, t.nodes()); err != nil {
			return out, fmt.Errorf("revoke a command key before the schedule: %w", err)
		}
	}
	t.start = time.Now()
	for _, n := range t.nodes() {
		t.openSpan(n.name, "alive", "", t.start)
	}
	res, err := t.run(ctx)
	out.Duration = report.Seconds(time.Since(began))
	if err != nil {
		return out, err
	}
	out.Violations, out.Commands, out.Failovers, out.Recoveries, out.Timeline = res.violations, res.commands, res.failovers, res.recoveries, res.timeline
	out.AttemptKinds = res.attemptKinds
	out.Timeline.Title = fmt.Sprintf("%s trial %d seed %d: %d fault(s), %d violation(s)", cfg.Scenario, index, cfg.Seed, len(sched.Faults), len(out.Violations))
	return out, nil
}

// result is what run returns.
type result struct {
	violations oracle.Violations
	commands   report.Commands
	failovers  []report.Seconds
	recoveries []report.Seconds
	timeline   *report.Timeline
	// attemptKinds counts the forbidden attempts delivered by kind.
	attemptKinds map[string]int
}

func (t *trial) run(ctx context.Context) (result, error) {
	var miners []string
	for _, s := range t.sites {
		miners = append(miners, s.minerIDs()...)
	}
	wctx, stopLoad := context.WithCancel(ctx)
	wl := newWorkload(t.cloud, miners, t.cfg.CommandInterval, t.cfg.Seed)
	at := t.att
	lo := newLocalOps(t, t.cfg.LocalInterval, t.cfg.Seed)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); lo.run(wctx) }()
	go func() { defer wg.Done(); wl.run(wctx) }()
	go func() { defer wg.Done(); at.run(wctx) }()
	go func() { defer wg.Done(); t.watchLinks(wctx) }()

	// The schedule: start and heal each fault at its offsets.
	type step struct {
		at   time.Duration
		f    schedule.Fault
		heal bool
	}
	var steps []step
	for _, f := range t.sched.Faults {
		steps = append(steps, step{f.At, f, false}, step{f.End(), f, true})
	}
	sortSteps := func() {
		for i := 1; i < len(steps); i++ {
			for j := i; j > 0 && (steps[j].at < steps[j-1].at || (steps[j].at == steps[j-1].at && steps[j].heal && !steps[j-1].heal)); j-- {
				steps[j], steps[j-1] = steps[j-1], steps[j]
			}
		}
	}
	sortSteps()
	var runErr error
	for _, s := range steps {
		if err := sleepUntil(ctx, t.start.Add(s.at)); err != nil {
			runErr = err
			break
		}
		var err error
		if s.heal {
			err = t.heal(s.f)
		} else {
			err = t.inject(s.f)
		}
		if err != nil {
			runErr = fmt.Errorf("fault %s: %w", s.f, err)
			break
		}
	}
	if runErr == nil {
		runErr = sleepUntil(ctx, t.start.Add(t.sched.Duration))
	}
	stopLoad()
	wg.Wait()
	if runErr != nil {
		return result{}, runErr
	}
	end := time.Now()
	t.progress("  schedule done; waiting for %d accepted command(s) to finish", len(wl.serverID))
	pending := wl.settle(ctx, t.cfg.FinalWait)
	return t.collect(wl, at, lo, pending, end)
}

func sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// watchLinks records each node's link spans (polled every 100ms).
func (t *trial) watchLinks(ctx context.Context) {
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		now := time.Now()
		for _, n := range t.nodes() {
			up := n.linkUp()
			t.mu.Lock()
			_, open := t.open[n.name+"/link"]
			t.mu.Unlock()
			switch {
			case up && !open:
				t.openSpan(n.name, "link", "", now)
			case !up && open:
				t.closeSpan(n.name, "link", now)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

func (t *trial) openSpan(row, kind, label string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := row + "/" + kind
	if _, ok := t.open[k]; ok {
		return
	}
	t.open[k] = len(t.spans)
	t.spans = append(t.spans, report.Span{Row: row, Kind: kind, From: at, Label: label})
}

func (t *trial) closeSpan(row, kind string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := row + "/" + kind
	i, ok := t.open[k]
	if !ok {
		return
	}
	delete(t.open, k)
	t.spans[i].To = at
}

func (t *trial) progress(format string, a ...any) {
	if t.cfg.Progress == nil {
		return
	}
	t.progressMu.Lock()
	defer t.progressMu.Unlock()
	fmt.Fprintf(t.cfg.Progress, format+"\n", a...)
}

func (t *trial) close() {
	for _, s := range t.sites {
		s.close()
	}
	if t.cloud != nil {
		_ = t.cloud.stop()
	}
}

// nodes are every site's nodes, in order.
func (t *trial) nodes() []*siteNode {
	var out []*siteNode
	for _, s := range t.sites {
		out = append(out, s.nodes...)
	}
	return out
}
