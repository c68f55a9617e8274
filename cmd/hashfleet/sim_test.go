package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/node/gate"
)

func TestSimRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "no-such-scenario"},
		{"--trials", "0"},
		{"--scenario", "kill-active,wan-site", "--replay", "5"},
		{"--bogus-flag"},
	} {
		if err := runSim(context.Background(), args); err == nil || errors.Is(err, errSimViolations) {
			t.Errorf("runSim(%q) = %v, want an argument error", args, err)
		}
	}
}

// TestSimExitsNonZeroOnViolation: a deliberately broken build (the gate's seq check off) makes one short
// trial fail; the command returns errSimViolations (exit status 1) and still writes its JSON report, with
// the failing seed, and the SVG of that trial.
func TestSimExitsNonZeroOnViolation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a chaos trial")
	}
	was := gate.UnsafeTestSkipSeqCheck(true)
	defer gate.UnsafeTestSkipSeqCheck(was)
	dir := t.TempDir()
	js, svg := filepath.Join(dir, "r.json"), filepath.Join(dir, "t.svg")
	err := runSim(context.Background(), []string{"--scenario", "clock-skew", "--trials", "1", "--seed", "4", "--short",
		"--json", js, "--svg", svg})
	if !errors.Is(err, errSimViolations) {
		t.Fatalf("runSim = %v, want errSimViolations", err)
	}
	b, rerr := os.ReadFile(js)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var rep struct {
		Scenarios []struct {
			Name        string  `json:"name"`
			Violations  int     `json:"violations"`
			FailedSeeds []int64 `json:"failed_seeds"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Scenarios) != 1 || rep.Scenarios[0].Violations == 0 || len(rep.Scenarios[0].FailedSeeds) != 1 {
		t.Fatalf("report %s (%v)", b, err)
	}
	s, _ := os.ReadFile(svg)
	if !strings.Contains(string(s), "<svg") {
		t.Fatal("no SVG written")
	}
}
