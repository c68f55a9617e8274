package cloudcluster_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestKillMemberProcess: three members as real processes joined through etcd on one Postgres; nine nodes
// spread over their gateways; commands issued through the members' HTTP endpoints. One member is killed
// with SIGKILL. Its nodes reconnect to the others (time measured); commands issued after the kill (retried
// until the cloud acknowledges them) all reach their nodes; no command is executed twice; per node, the
// seqs the cloud acknowledged strictly increase across the kill (no seq regression, checked against the
// shared counter too).
func TestKillMemberProcess(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("starts three member processes and kills one")
	}
	etcd := testsvc.StartEtcd(t)
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	openStore(t, dsn) // migrate once before the members race to
	var ps []*memberProcess
	for range 3 {
		ps = append(ps, startMemberProcess(t, etcd.Endpoint, dsn))
	}
	waitProcessMembers(t, ps, 3)
	addrs := func() []string { return []string{ps[0].gateway, ps[1].gateway, ps[2].gateway} }
	const nodes = 9
	var ns []*fakeNode
	for i := range nodes {
		ns = append(ns, startNode(t, fmt.Sprintf("kn-%02d", i), addrs, i%3))
	}
	// A warm-standby pair whose two nodes ask for the lease every 300 ms through their streams, across the
	// kill (the member processes declare the pair "pair-1" as n-a and n-b).
	pa := startPairNode(t, "n-a", "pair-1", addrs, 0)
	pb1 := startPairNode(t, "n-b", "pair-1", addrs, 1)
	for _, n := range append(ns, pa, pb1) {
		n.waitConnected(t, 20*time.Second)
	}

	acked := map[string][]issueResult{} // node → acknowledged commands in issue order
	ids := map[string][]string{}
	issue := func(members []*memberProcess, round string) {
		for _, n := range ns {
			id := fmt.Sprintf("%s-%s", n.id, round)
			r, tries, err := issueUntilAcked(members, n.id, id, 40*time.Second)
			if err != nil {
				t.Fatalf("issue %s after %d tries: %v", id, tries, err)
			}
			acked[n.id] = append(acked[n.id], r)
			ids[n.id] = append(ids[n.id], id)
		}
	}
	issue(ps, "before-1")
	issue(ps[1:], "before-2")
	waitExecuted(t, ns, ids, 20*time.Second)

	victim := ps[0]
	onVictim := []*fakeNode{}
	for _, n := range ns {
		if _, _, at := n.snapshot(); at == victim.gateway {
			onVictim = append(onVictim, n)
		}
	}
	killedAt := time.Now()
	victim.kill9()
	t.Logf("killed member %s (%d nodes on its gateway)", victim.id, len(onVictim))
	survivors := ps[1:]
	issueStart := time.Now()
	issue(survivors, "after-1")
	firstAfter := time.Since(issueStart)
	issue(survivors, "after-2")
	waitExecuted(t, ns, ids, 40*time.Second)

	var worst time.Duration
	for _, n := range onVictim {
		_, _, at := n.snapshot()
		if at == victim.gateway || at == "" {
			t.Fatalf("%s still on the dead member (%q)", n.id, at)
		}
		n.mu.Lock()
		rs := slices.Clone(n.reconnects)
		n.mu.Unlock()
		if len(rs) == 0 {
			t.Fatalf("%s moved without a measured reconnect", n.id)
		}
		worst = max(worst, rs[len(rs)-1])
	}
	t.Logf("nodes of the killed member reconnected within %s; first round of 9 commands after the kill acknowledged in %s; everything delivered %s after the kill",
		worst, firstAfter, time.Since(killedAt))

	check := openStore(t, dsn)
	for _, n := range ns {
		ex, _, _ := n.snapshot()
		seen := map[string]bool{}
		for _, c := range ex {
			if seen[c.GetCommandId()] {
				t.Fatalf("%s executed %s twice", n.id, c.GetCommandId())
			}
			seen[c.GetCommandId()] = true
		}
		for _, id := range ids[n.id] {
			if !seen[id] {
				t.Fatalf("%s never executed acknowledged command %s", n.id, id)
			}
		}
		var last uint64
		for i, r := range acked[n.id] {
			if r.Seq <= last {
				t.Fatalf("%s: acknowledged seq %d after %d (command %s): seq regression", n.id, r.Seq, last, ids[n.id][i])
			}
			last = r.Seq
		}
		stored, _, err := check.NodeQueue(n.id)
		if err != nil {
			t.Fatal(err)
		}
		if stored < last {
			t.Fatalf("%s: shared counter %d below acknowledged seq %d", n.id, stored, last)
		}
	}
	// No lease epoch issued twice: the store's ledger has one holder per epoch, 1..n, and every grant either
	// node received names the ledger's holder for its epoch.
	time.Sleep(2 * leaseEvery)
	issued, err := check.IssuedEpochs("pair-1")
	if err != nil {
		t.Fatal(err)
	}
	ledger := map[uint64]string{}
	for i, e := range issued {
		if e.Epoch != uint64(i+1) {
			t.Fatalf("lease ledger %+v: epochs not 1..n", issued)
		}
		ledger[e.Epoch] = e.Holder
	}
	grants := 0
	for _, n := range []*fakeNode{pa, pb1} {
		n.mu.Lock()
		gs := slices.Clone(n.grants)
		n.mu.Unlock()
		for _, g := range gs {
			grants++
			if h, ok := ledger[g.GetEpoch()]; !ok || h != g.GetHolder() {
				t.Fatalf("%s saw epoch %d granted to %s; the store issued it to %q", n.id, g.GetEpoch(), g.GetHolder(), h)
			}
		}
	}
	if len(issued) == 0 || grants == 0 {
		t.Fatalf("no lease traffic: %d epochs, %d grants seen", len(issued), grants)
	}
	t.Logf("lease: %d epochs issued (%v), %d grants seen by the nodes, each epoch one holder", len(issued), ledger, grants)

	for _, p := range survivors {
		var st map[string]any
		if code, err := httpJSON(http.MethodGet, "http://"+p.http+"/cluster/v1/members", nil, &st); err != nil || code != http.StatusOK {
			t.Fatalf("members on %s: %d %v", p.id, code, err)
		}
		t.Logf("member %s sees %v", p.id, st["members"])
	}
}

// waitProcessMembers waits until every process's member sees n members.
func waitProcessMembers(t *testing.T, ps []*memberProcess, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, p := range ps {
			var st struct {
				Members []string `json:"members"`
			}
			if code, err := httpJSON(http.MethodGet, "http://"+p.http+"/cluster/v1/members", nil, &st); err != nil || code != 200 || len(st.Members) != n {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range ps {
		t.Logf("member %s log:\n%s", p.id, p.log())
	}
	t.Fatalf("member processes did not converge on %d members", n)
}

// waitExecuted waits until every node executed every command id in ids[node].
func waitExecuted(t *testing.T, ns []*fakeNode, ids map[string][]string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, n := range ns {
		for {
			ex, _, _ := n.snapshot()
			have := map[string]bool{}
			for _, c := range ex {
				have[c.GetCommandId()] = true
			}
			missing := ""
			for _, id := range ids[n.id] {
				if !have[id] {
					missing = id
					break
				}
			}
			if missing == "" {
				break
			}
			if time.Now().After(deadline) {
				_, _, at := n.snapshot()
				t.Fatalf("%s (on %s) never executed %s", n.id, at, missing)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
