package harness

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/simulations/report"
	"github.com/hashfleet/hashfleet/simulations/schedule"
)

// Available reports whether scenario can run on this harness's topology (sites of one node): a scenario
// whose only faults need a warm-standby pair cannot.
func Available(base Config, scenario string) error {
	base.Scenario = scenario
	return base.Validate()
}

// Run runs trials trials of each scenario, trial i with schedule.TrialSeed(seed, scenario, i), base.Parallel
// at a time, and returns the report (trials in order). base gives every trial's settings (its Scenario and
// Seed are replaced). A scenario that cannot run on the topology is skipped with a progress line; ctx ends
// the run early.
func Run(ctx context.Context, base Config, scenarios []string, trials int, seed int64) (*report.Report, error) {
	base = base.withDefaults()
	r := &report.Report{Seed: seed, Started: time.Now().UTC()}
	if base.Progress != nil {
		base.Progress = &syncWriter{w: base.Progress}
	}
	type job struct {
		sc    schedule.Scenario
		index int
		cfg   Config
	}
	var jobs []job
	for _, name := range scenarios {
		sc, err := schedule.Lookup(name)
		if err != nil {
			return r, err
		}
		if err := Available(base, name); err != nil {
			if base.Progress != nil {
				fmt.Fprintf(base.Progress, "scenario %s: skipped: %v\n", name, err)
			}
			continue
		}
		for i := range trials {
			cfg := base
			cfg.Scenario, cfg.Seed = name, schedule.TrialSeed(seed, name, i)
			jobs = append(jobs, job{sc, i, cfg})
		}
	}
	results := make([]*report.Trial, len(jobs))
	sem := make(chan struct{}, base.Parallel)
	var wg sync.WaitGroup
	for k, j := range jobs {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t, err := RunTrial(ctx, j.cfg, j.index)
			if err != nil {
				t.Error = err.Error()
			}
			results[k] = &t
			printTrial(base.Progress, j.sc.Name, j.index, trials, &t)
		}()
	}
	wg.Wait()
	for k, j := range jobs {
		if results[k] != nil {
			r.Add(j.sc.Name, j.sc.Description, *results[k])
		}
	}
	return r, ctx.Err()
}

func printTrial(w io.Writer, name string, i, trials int, t *report.Trial) {
	if w == nil {
		return
	}
	status := "ok"
	switch {
	case t.Error != "":
		status = "ERROR " + t.Error
	case len(t.Violations) > 0:
		status = fmt.Sprintf("%d VIOLATION(S), replay with --replay %d", len(t.Violations), t.Seed)
	}
	msg := fmt.Sprintf("scenario %s trial %d/%d seed %d: %s (%d faults, %d commands, %s)\n", name, i+1, trials, t.Seed,
		status, len(t.Faults), t.Commands.Issued, time.Duration(t.Duration).Round(time.Millisecond))
	for j, v := range t.Violations {
		if j == 5 {
			msg += fmt.Sprintf("    … and %d more\n", len(t.Violations)-5)
			break
		}
		msg += fmt.Sprintf("    %s\n", v)
	}
	_, _ = io.WriteString(w, msg)
}

// syncWriter serializes writes from concurrent trials.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
