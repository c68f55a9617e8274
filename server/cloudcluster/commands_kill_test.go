package cloudcluster_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestKillOrgMemberProcess: three members as real processes joined through etcd on one Postgres; six
// nodes with two miners each spread over their gateways. A command to all twelve miners is issued over
// HTTP; while the miners are still working, the member hosting the Org grain is killed with SIGKILL. Its
// nodes reconnect elsewhere, the miners finish, and the command completes, readable on both survivors with
// every miner's result exactly once. The request asked again on a survivor (retried while the dead member
// is being dropped) returns the same command; no node runs it twice.
func TestKillOrgMemberProcess(t *testing.T) {
	skipUnderRace(t)
	if testing.Short() {
		t.Skip("starts three member processes and kills one")
	}
	etcd := testsvc.StartEtcd(t)
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	st := openStore(t, dsn) // migrate once before the members race to
	var ps []*memberProcess
	for range 3 {
		ps = append(ps, startMemberProcess(t, etcd.Endpoint, dsn))
	}
	waitProcessMembers(t, ps, 3)
	addrs := func() []string { return []string{ps[0].gateway, ps[1].gateway, ps[2].gateway} }
	var ns []*minerNode
	var devices []*pb.Device
	var miners []string
	for i := range 6 {
		id := fmt.Sprintf("ko-%02d", i)
		if err := st.PutNodeRecord(&pb.NodeRecord{NodeId: id, OrgId: "org-k"}); err != nil {
			t.Fatal(err)
		}
		ms := []string{id + "-m0", id + "-m1"}
		for _, m := range ms {
			devices = append(devices, &pb.Device{MinerId: m, NodeId: id})
		}
		miners = append(miners, ms...)
		ns = append(ns, startMinerNode(t, id, ms, true, addrs, i%3))
	}
	if err := st.Apply(store.Batch{Devices: devices}); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		n.waitConnected(t, 20*time.Second)
	}
	body := map[string]any{"idempotency_key": "kill-1", "miner_ids": miners, "action": "uncurtail"}
	issue := func(p *memberProcess) (issueAnswer, int, error) {
		var a issueAnswer
		code, err := httpJSON(http.MethodPost, "http://"+p.http+"/cluster/v1/orgs/org-k/commands", body, &a)
		return a, code, err
	}
	first, code, err := issue(ps[0])
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("issue: %d %+v %v", code, first, err)
	}
	var victim *memberProcess
	var survivors []*memberProcess
	for _, p := range ps {
		if p.id == first.OrgMember {
			victim = p
		} else {
			survivors = append(survivors, p)
		}
	}
	if victim == nil {
		t.Fatalf("org grain on unknown member %q", first.OrgMember)
	}
	get := func(p *memberProcess) commandAnswer {
		var a commandAnswer
		_, _ = httpJSON(http.MethodGet, "http://"+p.http+"/cluster/v1/commands/"+first.CommandID, nil, &a)
		return a
	}
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s\nsurvivor log:\n%s", what, d, survivors[0].log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("every miner running", 20*time.Second, func() bool { return get(survivors[0]).Summary["running"] == len(miners) })

	killed := time.Now()
	victim.kill9()
	t.Logf("killed member %s, the org grain's", victim.id)
	for _, n := range ns {
		waitFor(n.id+" attached on a live member", 40*time.Second, func() bool {
			var s struct {
				Connected    bool   `json:"connected"`
				StreamMember string `json:"stream_member"`
			}
			code, err := httpJSON(http.MethodGet, "http://"+survivors[0].http+"/cluster/v1/nodes/"+n.id, nil, &s)
			return err == nil && code == http.StatusOK && s.Connected && s.StreamMember != victim.id
		})
	}
	t.Logf("every node attached again %s after the kill", time.Since(killed))
	for _, n := range ns {
		n.release()
	}
	for _, p := range survivors {
		waitFor("command succeeded on "+p.id, 40*time.Second, func() bool { return get(p).Status == "succeeded" })
		checkEveryMinerOnce(t, get(p), miners, "succeeded")
	}
	t.Logf("command complete %s after the kill", time.Since(killed))
	var again issueAnswer
	waitFor("the request asked again is answered", 40*time.Second, func() bool {
		a, code, err := issue(survivors[1])
		again = a
		return err == nil && code == http.StatusOK
	})
	if again.CommandID != first.CommandID || !again.Existing {
		t.Fatalf("asked again: %+v, want command %s", again, first.CommandID)
	}
	time.Sleep(300 * time.Millisecond)
	checkExecutedOnce(t, ns, first.CommandID)
}
