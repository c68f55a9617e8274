package node_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/automation"
)

// TestHashrateDropRebootsNeverExceedTheCap drops the hashrate of every miner of a simulated site at once
// (real TCP; node and simulators on one controlled clock, run faster than real time). With site-wide
// suppression off, the hashrate rule reboots them in waves: never more than max_concurrent rebooting at
// once, as the miners themselves see it, each reboot audited with the rule; each miner at most once per
// min_interval. With suppression on, a site-wide drop reboots nothing and tells the operator once.
func TestHashrateDropRebootsNeverExceedTheCap(t *testing.T) {
	const miners, capN = 20, 3
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	s := startAutomationSite(t, siteOpts{miners: miners, clock: clk, poll: 5 * time.Second, reboot: 90 * time.Second})
	tk := runClock(clk, time.Second, 4*time.Millisecond)
	defer tk.Stop()
	ctx := context.Background()
	s.allMining(30*time.Second, nil)

	pol := automation.Policy{Version: 1}
	pol.Rules.HashrateDrop = []automation.HashrateDropRule{{ID: "hr", DropPct: 30, Window: automation.Duration(time.Minute),
		MinInterval: automation.Duration(10 * time.Minute), MaxConcurrent: capN}}
	s.install(pol)
	// Let the rule learn each miner's reference.
	t0 := clk.Now()
	waitUntil(t, 20*time.Second, "a minute of healthy readings", nil, func() bool { return clk.Since(t0) > time.Minute })

	var maxDown, samples atomic.Int64
	stopWatch := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
			}
			n := int64(0)
			for _, m := range s.fleet.Miners() {
				if m.Snapshot().Rebooting {
					n++
				}
			}
			samples.Add(1)
			if n > maxDown.Load() {
				maxDown.Store(n)
			}
		}
	}()
	for _, m := range s.fleet.Miners() {
		m.SetHashrateFactor(0.4)
	}
	dropAt := clk.Now()
	restarts := func() (total int, per map[string][]time.Time) {
		per = map[string][]time.Time{}
		for _, m := range s.fleet.Miners() {
			for _, w := range m.WriteLog() {
				if w.Command == "restart" && w.Accepted {
					per[m.ID()] = append(per[m.ID()], w.At)
					total++
				}
			}
		}
		return total, per
	}
	waitUntil(t, 90*time.Second, "every miner rebooted once", nil, func() bool {
		_, per := restarts()
		return len(per) == miners
	})
	close(stopWatch)
	wg.Wait()
	total, per := restarts()
	t.Logf("%d reboots over %s of site time after a site-wide drop; at most %d rebooting at once (%d samples)",
		total, clk.Since(dropAt).Round(time.Second), maxDown.Load(), samples.Load())
	if maxDown.Load() > capN {
		t.Fatalf("%d miners rebooting at once, cap %d", maxDown.Load(), capN)
	}
	if maxDown.Load() == 0 {
		t.Fatal("the watcher never saw a reboot")
	}
	for id, at := range per {
		for i := 1; i < len(at); i++ {
			if at[i].Sub(at[i-1]) < 10*time.Minute {
				t.Fatalf("%s rebooted twice within %s", id, at[i].Sub(at[i-1]))
			}
		}
	}
	// Every reboot is audited with the rule that fired it.
	audit, err := s.node.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, r := range audit {
		if r.GetActor() == "automation:hr" && strings.Contains(r.GetMessage(), "reboot") && r.GetLocalOrigin() {
			audited++
		}
	}
	if audited < total {
		t.Fatalf("%d reboots, %d audited", total, audited)
	}
	st, err := s.node.AutomationStatus(ctx)
	if err != nil || st.PolicyVersion != 1 {
		t.Fatalf("status %+v %v", st, err)
	}

	// Suppression: a site-wide drop is likely the pool's or the network's; nothing is rebooted.
	pol.Version = 2
	pol.Rules.HashrateDrop[0].SuppressSiteWidePct = 50
	s.install(pol)
	before, _ := restarts()
	t1 := clk.Now()
	waitUntil(t, 60*time.Second, "15 minutes of suppressed drop", nil, func() bool { return clk.Since(t1) > 15*time.Minute })
	if after, _ := restarts(); after != before {
		t.Fatalf("%d reboots during a suppressed site-wide drop", after-before)
	}
	notices := 0
	audit, _ = s.node.Audit(0, 0)
	for _, r := range audit {
		if r.GetActor() == "automation:hr" && strings.Contains(r.GetMessage(), "site-wide") {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("%d site-wide notices, want 1", notices)
	}
}
