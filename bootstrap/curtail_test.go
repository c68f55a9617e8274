package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/node/curtail"
)

type siteCurtailView struct {
	Nodes []struct {
		Node   string `json:"node"`
		Status *struct {
			EventID    string  `json:"event_id"`
			State      string  `json:"state"`
			TargetKW   float64 `json:"target_kw"`
			AchievedKW float64 `json:"achieved_kw"`
			Curtailed  int     `json:"miners_curtailed"`
		} `json:"status"`
		Command *struct {
			Code string `json:"code"`
		} `json:"command"`
	} `json:"nodes"`
}

// TestSplitSiteAutomationAcrossAWANOutage runs split mode over real sockets (TLS gateway, enrolled node,
// simulated miners on TCP) with the node on a controlled clock run faster than real time:
//
//   - the operator's site policy goes through the API, is signed with the org's command key and installed
//     on the node (SUCCEEDED in GET .../policy);
//   - curtailment by kW target through the API reaches its target and its state shows in GET .../curtail;
//   - a validly signed pool change to a pool the policy does not trust is refused at the node
//     (refused_policy in the cloud audit) and never reaches the miner;
//   - with the server stopped (the WAN cut), an overheat rule curtails a hot miner and a schedule starts and
//     ends its curtailment event on time in the site's time zone;
//   - after the server comes back, the cloud audit has every automatic action the node took.
func TestSplitSiteAutomationAcrossAWANOutage(t *testing.T) {
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second))
	stopClock := make(chan struct{})
	clockDone := make(chan struct{})
	var step atomic.Int64 // per 5 ms of real time: 100 ms (20× real time), 10 ms (2×) around the window's edges
	step.Store(int64(100 * time.Millisecond))
	go func() { // schedules, ramps, polls and reconnects are all on the node's clock
		defer close(clockDone)
		for {
			select {
			case <-stopClock:
				return
			case <-time.After(5 * time.Millisecond):
				clk.Advance(time.Duration(step.Load()))
			}
		}
	}()
	s := startSplit(t, splitOpts{miners: 6, nodeClock: clk})
	t.Cleanup(func() { // after the node has stopped (cleanups run last-in first-out)
		close(stopClock)
		<-clockDone
	})
	miners := s.fleet.Miners()
	ctx := context.Background()

	// The policy: overheat, a daily evening schedule later today (UTC), trusted pools.
	start := clk.Now().Add(30 * time.Minute).Truncate(time.Minute)
	end := start.Add(3 * time.Minute)
	sched := []string{miners[4].ID(), miners[5].ID()}
	pol := map[string]any{
		"rules": map[string]any{
			"overheat":    []map[string]any{{"id": "hot", "threshold_c": 85, "hysteresis_c": 10, "action": "curtail"}},
			"unreachable": []map[string]any{{"id": "gone", "after": "2m"}},
		},
		"schedules": []map[string]any{{"id": "evening", "time_zone": "UTC", "start": start.Format("15:04"), "end": end.Format("15:04"),
			"full": true, "miners": sched}},
		"trusted_pools": []string{"stratum+tcp://*.trusted-pool.example:3333"},
	}
	var pv struct {
		Version uint64 `json:"version"`
		KeyID   string `json:"key_id"`
		Nodes   []struct {
			Node string `json:"node"`
			Code string `json:"code"`
		} `json:"nodes"`
	}
	if st := s.do("PUT", "/api/v1/sites/test-site/policy", pol, &pv); st != 200 || pv.Version != 1 || len(pv.Nodes) != 1 || pv.Nodes[0].Node != s.nodeID {
		t.Fatalf("PUT policy: HTTP %d %+v", st, pv)
	}
	waitFor(t, 15*time.Second, "the node to install the policy", func() bool {
		return s.do("GET", "/api/v1/sites/test-site/policy", nil, &pv) == 200 && len(pv.Nodes) == 1 && pv.Nodes[0].Code == "succeeded"
	})
	if as, err := s.node.Node.AutomationStatus(ctx); err != nil || as.PolicyVersion != 1 || as.Site != "test-site" {
		t.Fatalf("node automation %+v %v", as, err)
	}
	// Malformed policies are refused at the API, nothing sent.
	for _, bad := range []any{
		map[string]any{"rules": map[string]any{"overheat": []map[string]any{{"id": "x", "threshold_c": 500, "action": "curtail"}}}},
		map[string]any{"rules": map[string]any{}, "surprise": true},
		map[string]any{"version": 1, "rules": map[string]any{}},
		map[string]any{"org": "another-org", "rules": map[string]any{}},
	} {
		if st := s.do("PUT", "/api/v1/sites/test-site/policy", bad, nil); st != 400 && st != 409 {
			t.Fatalf("bad policy %v: HTTP %d", bad, st)
		}
	}

	// Curtailment by target through the API: shed 5 kW of ~19.
	var cr struct {
		EventID string `json:"event_id"`
	}
	if st := s.do("POST", "/api/v1/sites/test-site/curtail", map[string]any{"event_id": "dr-1", "target_kw": 5}, &cr); st != 202 || cr.EventID != "dr-1" {
		t.Fatalf("POST curtail: HTTP %d %+v", st, cr)
	}
	var cv siteCurtailView
	waitFor(t, 30*time.Second, "the event holding its target at the cloud", func() bool {
		if s.do("GET", "/api/v1/sites/test-site/curtail", nil, &cv) != 200 || len(cv.Nodes) != 1 || cv.Nodes[0].Status == nil {
			return false
		}
		st := cv.Nodes[0].Status
		return st.EventID == "dr-1" && st.State == "holding" && st.AchievedKW >= 5-5 && st.Curtailed >= 2
	})
	if cv.Nodes[0].Command == nil || cv.Nodes[0].Command.Code != "succeeded" {
		t.Fatalf("curtail command outcome %+v", cv.Nodes[0].Command)
	}
	for _, bad := range []map[string]any{{}, {"target_kw": -1}, {"full": true, "target_kw": 3}, {"stop": true}, {"target_kw": 1, "miner_ids": []string{"nope"}}} {
		if st := s.do("POST", "/api/v1/sites/test-site/curtail", bad, nil); st != 400 {
			t.Fatalf("bad curtail %v: HTTP %d", bad, st)
		}
	}
	if st := s.do("GET", "/api/v1/sites/no-such-site/curtail", nil, nil); st != 404 {
		t.Fatalf("unknown site: HTTP %d", st)
	}
	if st := s.do("POST", "/api/v1/sites/test-site/curtail", map[string]any{"event_id": "dr-1", "stop": true}, nil); st != 202 {
		t.Fatalf("stop: HTTP %d", st)
	}
	waitFor(t, 30*time.Second, "the event done at the cloud", func() bool {
		return s.do("GET", "/api/v1/sites/test-site/curtail", nil, &cv) == 200 && cv.Nodes[0].Status != nil && cv.Nodes[0].Status.State == "done"
	})

	// The pool guard: a validly signed pool change to an untrusted pool is refused at the node.
	var pc struct {
		CommandID string `json:"command_id"`
	}
	if st := s.do("POST", "/api/v1/commands", map[string]any{"miner_ids": []string{miners[0].ID()}, "action": "update_pools",
		"pools": []map[string]any{{"url": "stratum+tcp://pool.evil.example:3333", "user": "thief"}}}, &pc); st != 202 {
		t.Fatalf("pool command: HTTP %d", st)
	}
	waitFor(t, 15*time.Second, "the refusal in the cloud audit", func() bool {
		for _, r := range s.cloudAudit() {
			if r["command_id"] == pc.CommandID && r["code"] == "refused_policy" {
				return true
			}
		}
		return false
	})
	for _, w := range miners[0].WriteLog() {
		if strings.Contains(w.Parameter, "evil") {
			t.Fatalf("untrusted pool reached the miner: %+v", w)
		}
	}

	// The WAN goes down.
	s.stopServer()
	s.waitLink(false)
	miners[1].SetHeat(25) // chips at ~98 °C
	waitFor(t, 30*time.Second, "the overheat rule to curtail the hot miner", func() bool { return miners[1].Snapshot().Sleeping })
	for _, m := range miners[:4] {
		if m != miners[1] && m.Snapshot().Sleeping {
			t.Fatalf("%s curtailed without cause", m.ID())
		}
	}
	miners[1].SetHeat(0) // the intake cleared: once cooled, the rule resumes it
	waitFor(t, 30*time.Second, "the overheat rule to resume the cooled miner", func() bool { return !miners[1].Snapshot().Sleeping })
	if miners[4].Snapshot().Sleeping || miners[5].Snapshot().Sleeping {
		t.Fatal("scheduled miners asleep before their window")
	}
	// Half an hour passes quietly (the node's clock jumps to just before the window, then runs at 2× real
	// time across the window's opening, so "on time" can be measured to a fraction of a second).
	step.Store(int64(10 * time.Millisecond))
	clk.Advance(start.Add(-3 * time.Second).Sub(clk.Now()))
	eventID := automation.ScheduleEventID("evening", start)
	var d curtail.Status
	waitFor(t, 60*time.Second, "the schedule's event to start", func() bool {
		var err error
		d, err = s.node.Node.CurtailDetail(ctx)
		return err == nil && d.Event.ID == eventID
	})
	if late := d.StartedAt.Sub(start); late < 0 || late > 2*time.Second {
		t.Fatalf("schedule started at %s, window opens %s", d.StartedAt, start)
	}
	step.Store(int64(100 * time.Millisecond))
	waitFor(t, 60*time.Second, "the scheduled miners asleep", func() bool {
		return miners[4].Snapshot().Sleeping && miners[5].Snapshot().Sleeping
	})
	waitFor(t, 60*time.Second, "the window's end near", func() bool { return !clk.Now().Before(end.Add(-5 * time.Second)) })
	step.Store(int64(10 * time.Millisecond))
	waitFor(t, 30*time.Second, "the window's end", func() bool { return clk.Now().After(end.Add(3 * time.Second)) })
	step.Store(int64(100 * time.Millisecond))
	waitFor(t, 90*time.Second, "the schedule's event to end", func() bool {
		var err error
		d, err = s.node.Node.CurtailDetail(ctx)
		return err == nil && d.Phase == curtail.PhaseIdle && d.Last != nil && d.Last.EventID == eventID
	})
	if miners[4].Snapshot().Sleeping || miners[5].Snapshot().Sleeping {
		t.Fatal("scheduled miners still asleep after the window")
	}

	// Every automatic action the node took while the WAN was down.
	local, err := s.node.Node.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	kinds := map[string]int{}
	for _, r := range local {
		if r.GetLocalOrigin() && (strings.HasPrefix(r.GetActor(), "automation:") || strings.HasPrefix(r.GetActor(), "curtail:schedule:")) {
			want[r.GetCommandId()+"|"+r.GetActor()] = true
			kinds[r.GetActor()]++
		}
	}
	if kinds["automation:hot"] < 2 || kinds["automation:evening"] < 2 || kinds["curtail:"+eventID] < 2 {
		t.Fatalf("automatic actions on the node: %v", kinds)
	}
	// The schedule's start and stop were decided at the window's edges, not at the next evaluation tick.
	for _, r := range local {
		at := time.UnixMilli(r.GetAtUnixMs())
		switch r.GetCommandId() {
		case eventID + ":start":
			t.Logf("schedule start decided %s after the window opened (node clock)", at.Sub(start))
			if late := at.Sub(start); late < 0 || late > 2*time.Second {
				t.Fatalf("schedule start decided at %s, window opens %s", at, start)
			}
		case eventID + ":stop":
			t.Logf("schedule stop decided %s after the window closed (node clock)", at.Sub(end))
			if late := at.Sub(end); late < 0 || late > 2*time.Second {
				t.Fatalf("schedule stop decided at %s, window closes %s", at, end)
			}
		}
	}

	// The WAN comes back: the spooled audit reaches the cloud.
	s.startServer()
	s.waitLink(true)
	waitFor(t, 60*time.Second, fmt.Sprintf("the cloud audit to hold all %d automatic actions", len(want)), func() bool {
		got := map[string]bool{}
		for _, r := range s.cloudAudit() {
			got[fmt.Sprint(r["command_id"])+"|"+fmt.Sprint(r["actor"])] = true
		}
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "the schedule's outcome at the cloud", func() bool {
		return s.do("GET", "/api/v1/sites/test-site/curtail", nil, &cv) == 200 && cv.Nodes[0].Status != nil &&
			cv.Nodes[0].Status.EventID == eventID && cv.Nodes[0].Status.State == "done"
	})
}

// TestCombinedSitePolicyAndCurtailment: in combined mode the local node is the site's only node; a policy
// set through the API is signed with the org key and installed (its trusted pools then guard pool changes),
// and curtailment by the API reaches the miners.
func TestCombinedSitePolicyAndCurtailment(t *testing.T) {
	s := startSite(t, 4, 300*time.Millisecond, nil)
	waitFor(t, 15*time.Second, "4 miners mining", func() bool {
		n := 0
		for _, m := range s.miners() {
			if m.State == "mining" {
				n++
			}
		}
		return n == 4
	})
	var pv struct {
		Version uint64 `json:"version"`
		Nodes   []struct {
			Code string `json:"code"`
		} `json:"nodes"`
	}
	pol := map[string]any{"rules": map[string]any{}, "trusted_pools": []string{"stratum+tcp://*.trusted-pool.example:3333"}}
	if st := s.do("PUT", "/api/v1/sites/main/policy", pol, &pv); st != 200 || pv.Version != 1 || len(pv.Nodes) != 1 {
		t.Fatalf("PUT policy: HTTP %d %+v", st, pv)
	}
	waitFor(t, 15*time.Second, "the policy installed", func() bool {
		return s.do("GET", "/api/v1/sites/main/policy", nil, &pv) == 200 && pv.Nodes[0].Code == "succeeded"
	})
	if st := s.do("PUT", "/api/v1/sites/main/policy", map[string]any{"version": 1, "rules": map[string]any{}}, nil); st != 409 {
		t.Fatalf("stale version: HTTP %d", st)
	}
	id := s.fleet.Miners()[0].ID()
	var cr struct {
		EventID string `json:"event_id"`
	}
	if st := s.do("POST", "/api/v1/sites/main/curtail", map[string]any{"full": true, "miner_ids": []string{id}}, &cr); st != 202 || cr.EventID == "" {
		t.Fatalf("POST curtail: HTTP %d", st)
	}
	waitFor(t, 20*time.Second, "the miner asleep", func() bool { return s.fleet.Miners()[0].Snapshot().Sleeping })
	if s.fleet.Miners()[1].Snapshot().Sleeping {
		t.Fatal("a miner outside the scope slept")
	}
	if st := s.do("POST", "/api/v1/sites/main/curtail", map[string]any{"event_id": cr.EventID, "stop": true}, nil); st != 202 {
		t.Fatalf("stop: HTTP %d", st)
	}
	// The release ramps at the default pace (one step per 30 s after the last): the cloud shows it under way.
	var cv siteCurtailView
	waitFor(t, 20*time.Second, "the event releasing at the cloud", func() bool {
		return s.do("GET", "/api/v1/sites/main/curtail", nil, &cv) == 200 && len(cv.Nodes) == 1 && cv.Nodes[0].Status != nil &&
			cv.Nodes[0].Status.EventID == cr.EventID && cv.Nodes[0].Status.State == "releasing"
	})
}
