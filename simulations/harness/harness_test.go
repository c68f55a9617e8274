package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/simulations/oracle"
	"github.com/hashfleet/hashfleet/simulations/report"
	"github.com/hashfleet/hashfleet/simulations/schedule"
)

func progress(t *testing.T) *bytes.Buffer {
	b := &bytes.Buffer{}
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Log("\n" + b.String())
		}
	})
	return b
}

// TestSameSeedSameSchedule: a trial's schedule is a function of its seed (and scenario) alone, and a run's
// trial seeds are a function of the run's seed.
func TestSameSeedSameSchedule(t *testing.T) {
	for _, sc := range schedule.Scenarios() {
		cfg := Config{Scenario: sc.Name, Seed: schedule.TrialSeed(7, sc.Name, 3)}
		if err := Available(cfg, sc.Name); err != nil {
			continue
		}
		a, err := cfg.Schedule()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Config{Scenario: sc.Name, Seed: schedule.TrialSeed(7, sc.Name, 3)}.Schedule()
		if a.Digest() != b.Digest() || a.String() != b.String() {
			t.Fatalf("%s: two schedules from one seed:\n%s\n%s", sc.Name, a, b)
		}
		c, _ := Config{Scenario: sc.Name, Seed: schedule.TrialSeed(8, sc.Name, 3)}.Schedule()
		if len(a.Faults) > 0 && a.Digest() == c.Digest() {
			t.Fatalf("%s: seeds 7 and 8 gave one schedule", sc.Name)
		}
	}
}

// TestPairScenariosNeedPairs: scenarios that aim at a pair are refused on sites of one node, not run
// half-way.
func TestPairScenariosNeedPairs(t *testing.T) {
	if err := Available(Config{}, "lan-pair"); err == nil {
		t.Fatal("lan-pair accepted on a topology without pairs")
	}
	if err := (Config{Scenario: "no-such"}).Validate(); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	if err := (Config{Scenario: "mixed", CGMiners: -1}).Validate(); err == nil {
		t.Fatal("a site without the hang miner accepted")
	}
}

// TestShortRunEveryScenario runs one short trial of every scenario the topology supports and expects no
// violation: the default suite's chaos run.
func TestShortRunEveryScenario(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a cloud and a site per scenario")
	}
	var names []string
	for _, s := range schedule.Scenarios() {
		names = append(names, s.Name)
	}
	out := progress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base := Short()
	base.Progress, base.Parallel = out, 2
	r, err := Run(ctx, base, names, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) < 8 {
		t.Fatalf("only %d scenarios ran", len(r.Scenarios))
	}
	kinds := map[string]int{}
	for _, s := range r.Scenarios {
		for _, run := range s.Runs {
			for k, n := range run.AttemptKinds {
				kinds[k] += n
			}
		}
		if s.Violations > 0 || s.Errors > 0 {
			t.Errorf("scenario %s: %d violations, %d errors (seeds %v)", s.Name, s.Violations, s.Errors, s.FailedSeeds)
		}
		if s.Commands.Succeeded == 0 {
			t.Errorf("scenario %s: no command succeeded: %+v", s.Name, s.Commands)
		}
	}
	for _, k := range []oracle.AttemptKind{oracle.AttemptForged, oracle.AttemptOutOfOrder, oracle.AttemptWrongNode, oracle.AttemptRevokedKey} {
		if kinds[string(k)] == 0 {
			t.Errorf("no %s attempt delivered in the whole run: %v", k, kinds)
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scenarios []struct {
			Name   string `json:"name"`
			Trials int    `json:"trials"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Scenarios) != len(r.Scenarios) {
		t.Fatalf("JSON report does not read back: %v", err)
	}
	w := r.Worst()
	if w == nil {
		t.Fatal("no trial to draw")
	}
	var svg bytes.Buffer
	if err := report.WriteSVG(&svg, w.Timeline); err != nil || !strings.Contains(svg.String(), "<svg") || !strings.Contains(svg.String(), "writes by node1") {
		t.Fatalf("SVG: %v", err)
	}
	if dir := os.Getenv("CHAOS_OUT"); dir != "" {
		_ = os.WriteFile(dir+"/short.svg", svg.Bytes(), 0o644)
		_ = os.WriteFile(dir+"/short.json", js.Bytes(), 0o644)
	}
}

// TestBrokenSeqCheckIsCaught: with the gate's seq check switched off (a deliberately broken build), the
// out-of-order commands the attacker injects run, and the no-forbidden-execution oracle says so.
func TestBrokenSeqCheckIsCaught(t *testing.T) {
	// Not parallel: the hook is process-wide, and parallel tests start only after this one ended.
	if testing.Short() {
		t.Skip("starts a cloud and a site")
	}
	was := gate.UnsafeTestSkipSeqCheck(true)
	defer gate.UnsafeTestSkipSeqCheck(was)
	cfg := Short()
	cfg.Scenario, cfg.Seed, cfg.AttemptInterval, cfg.Progress = "gateway-chaos", 3, 300*time.Millisecond, progress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr, err := RunTrial(ctx, cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := tr.Violations.Of(oracle.InvNoForbidden)
	if len(forbidden) == 0 {
		t.Fatalf("no forbidden execution found with the seq check off; %d attempts, violations %v", tr.Commands.Attempts, tr.Violations)
	}
	for _, v := range forbidden {
		if !strings.Contains(v.Detail, string(oracle.AttemptOutOfOrder)) {
			t.Errorf("a forbidden execution other than out-of-order: %s", v)
		}
	}
}
