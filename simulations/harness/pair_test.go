package harness

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/simulations/oracle"
)

// TestPairScenarios runs one trial of each warm-standby pair scenario named in CHAOS_PAIR_SCENARIOS
// (default kill-active): two nodes share the site's miners through the real pair declaration, lease and
// gossip, and the oracles read epochs from the nodes' write logs joined with the miners' own logs.
func TestPairScenarios(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a cloud and a pair")
	}
	names := []string{"kill-active"}
	if s := os.Getenv("CHAOS_PAIR_SCENARIOS"); s != "" {
		names = splitComma(s)
	}
	base := PairShort()
	base.Progress = progress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := Run(ctx, base, names, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Scenarios {
		if s.Violations > 0 || s.Errors > 0 {
			t.Errorf("scenario %s: %d violations, %d errors (seeds %v)", s.Name, s.Violations, s.Errors, s.FailedSeeds)
		}
		for _, run := range s.Runs {
			if run.Error != "" {
				t.Errorf("%s: %s", s.Name, run.Error)
			}
			for _, v := range run.Violations {
				t.Errorf("%s: %s", s.Name, v)
			}
		}
		t.Logf("%s: failover %s, commands %+v", s.Name, s.Failover, s.Commands)
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// TestBrokenSelfFenceIsCaughtAtAPair: the active is isolated (cut from the cloud and from its partner, alive,
// its operator at the console running local commands) long enough for the standby to be promoted. With
// self-fencing the isolated active stops writing before the standby's first write and the trial is clean;
// with self-fencing off in both members (a deliberately broken build) it keeps running the local commands
// while the promoted standby runs the cloud's, and the single-writer oracle fails on the miners' own logs.
func TestBrokenSelfFenceIsCaughtAtAPair(t *testing.T) {
	if testing.Short() || os.Getenv("CHAOS_PAIR_BROKEN") == "" {
		t.Skip("two 37 s pair trials: set CHAOS_PAIR_BROKEN=1 (TestBrokenSelfFenceIsCaught proves the same on the decision alone)")
	}
	for _, broken := range []bool{false, true} {
		cfg := PairShort()
		cfg.Scenario, cfg.Seed, cfg.WANIsolates, cfg.UnsafeNoSelfFence, cfg.Progress = "stale-active", 2, true, broken, progress(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		tr, err := RunTrial(ctx, cfg, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		single := tr.Violations.Of(oracle.InvSingleWriter)
		switch {
		case broken && len(single) == 0:
			t.Errorf("self-fencing off: no single-writer violation; %d local commands, violations %v", tr.Commands.Local, tr.Violations)
		case !broken && len(tr.Violations) > 0:
			t.Errorf("self-fencing on: %v", tr.Violations)
		}
		if len(tr.Failovers) == 0 {
			t.Errorf("broken=%v: the standby never took over", broken)
		}
	}
}
