package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/bootstrap"
	"github.com/hashfleet/hashfleet/simulations/harness"
	"github.com/hashfleet/hashfleet/simulations/report"
	"github.com/hashfleet/hashfleet/simulations/schedule"
)

// errSimViolations: a `hashfleet sim` run found violations (the exit status is non-zero).
var errSimViolations = errors.New("chaos simulation found violations")

// runSim is `hashfleet sim --scenario NAME|all --trials N --seed S [--json FILE] [--svg FILE]`.
func runSim(ctx context.Context, args []string) error {
	fs := newFlags("sim", "Chaos simulations: a real cloud and sites on loopback, a seeded fault schedule, a steady stream of\n"+
		"operator commands, forbidden commands injected, and the invariant oracles over the miners' own write logs.\n"+
		"Exits non-zero on any violation, printing the seed that replays it.")
	scen := fs.String("scenario", "all", "scenario name, a comma-separated list, or all")
	trials := fs.Int("trials", 3, "trials per scenario")
	seed := fs.Int64("seed", 1, "run seed: trial i of scenario S uses schedule.TrialSeed(seed, S, i)")
	replay := fs.Int64("replay", 0, "run one trial with exactly this trial seed (as printed for a failing trial)")
	jsonPath := fs.String("json", "", "write the JSON report here")
	svgPath := fs.String("svg", "", "write the SVG timeline of the worst trial here")
	short := fs.Bool("short", false, "short trials (7 s of schedule) instead of long ones (40 s)")
	sites := fs.Int("sites", 1, "sites per trial")
	parallel := fs.Int("parallel", 1, "trials run at once")
	pairs := fs.Bool("pairs", false, "every site is a warm-standby pair (trials of 34 s: each fault outlasts the lease)")
	logLevel := fs.String("log-level", "error", "log level of the components: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: hashfleet sim [flags]\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nscenarios:")
		for _, s := range schedule.Scenarios() {
			fmt.Fprintf(fs.Output(), "  %-17s %s\n", s.Name, s.Description)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *trials < 1 {
		return fmt.Errorf("--trials %d: want at least 1", *trials)
	}
	log, err := bootstrap.NewLogger(*logLevel)
	if err != nil {
		return err
	}
	base := harness.Long()
	switch {
	case *pairs:
		base = harness.PairShort()
	case *short:
		base = harness.Short()
	}
	base.Sites, base.Parallel, base.Logger, base.Progress = *sites, *parallel, log, os.Stdout
	var names []string
	if *scen == "all" {
		for _, s := range schedule.Scenarios() {
			names = append(names, s.Name)
		}
	} else {
		names = strings.Split(*scen, ",")
	}
	for _, n := range names {
		if _, err := schedule.Lookup(n); err != nil {
			return err
		}
	}
	started := time.Now()
	var rep *report.Report
	if *replay != 0 {
		if len(names) != 1 {
			return errors.New("--replay needs one --scenario")
		}
		rep = &report.Report{Seed: *replay, Started: started.UTC()}
		cfg := base
		cfg.Scenario, cfg.Seed = names[0], *replay
		sc, _ := schedule.Lookup(names[0])
		t, err := harness.RunTrial(ctx, cfg, 0)
		if err != nil {
			t.Error = err.Error()
		}
		rep.Add(names[0], sc.Description, t)
	} else if rep, err = harness.Run(ctx, base, names, *trials, *seed); err != nil {
		return err
	}
	rep.Command = "hashfleet sim " + strings.Join(args, " ")
	fmt.Printf("\n%d scenario(s) in %s\n", len(rep.Scenarios), time.Since(started).Round(time.Second))
	if err := rep.WriteTable(os.Stdout); err != nil {
		return err
	}
	if *jsonPath != "" {
		if err := writeFileWith(*jsonPath, rep.WriteJSON); err != nil {
			return err
		}
		fmt.Printf("report: %s\n", *jsonPath)
	}
	if *svgPath != "" {
		if w := rep.Worst(); w != nil {
			if err := writeFileWith(*svgPath, func(f io.Writer) error { return report.WriteSVG(f, w.Timeline) }); err != nil {
				return err
			}
			fmt.Printf("timeline of %s trial %d (seed %d): %s\n", w.Scenario, w.Index, w.Seed, *svgPath)
		}
	}
	if n := rep.Violations(); n > 0 {
		same := "" // the flags that shape a trial, for the replay command
		switch {
		case *pairs:
			same = " --pairs"
		case *short:
			same = " --short"
		}
		if *sites != 1 {
			same += fmt.Sprintf(" --sites %d", *sites)
		}
		for _, s := range rep.FailedSeeds() {
			parts := strings.Fields(s)
			fmt.Printf("FAILED: scenario %s seed %s: replay with `hashfleet sim --scenario %s --replay %s%s`\n", parts[0], parts[1], parts[0], parts[1], same)
		}
		return fmt.Errorf("%w: %d violation(s) or failed trial(s)", errSimViolations, n)
	}
	return nil
}

// writeFileWith creates path (and its directory) and fills it with write.
func writeFileWith(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
