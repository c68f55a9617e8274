package cloudcluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestOrgMinerGrainsRefuseMalformed: Org and Miner grain messages sent straight to the grains (past the
// HTTP checks) that are malformed, name another org or miner, come from a node that does not own the
// miner, or repeat a result change nothing: refused or ignored, nothing recorded, no final result changed.
func TestOrgMinerGrainsRefuseMalformed(t *testing.T) {
	skipUnderRace(t)
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	st := openStore(t, dsn)
	ms := startMembers(t, 1, func(int) cloudcluster.Config {
		cfg := memberConfig(t, openStore(t, dsn))
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, cloudcluster.NewTestAgent()
		return cfg
	})
	if err := st.PutNodeRecord(&pb.NodeRecord{NodeId: "n1", OrgId: "org-a"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}, {MinerId: "m2", NodeId: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	c := ms[0].m.Cluster()
	req := func(identity, kind string, msg any) any {
		t.Helper()
		res, err := c.Request(identity, kind, msg)
		if err != nil {
			t.Fatalf("%s/%s %T: %v", kind, identity, msg, err)
		}
		return res
	}
	reboot := &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}
	for _, tc := range []struct {
		m    *pb.ClusterOrgIssue
		want pb.ClusterRefusal
	}{
		{&pb.ClusterOrgIssue{OrgId: "org-b", MinerIds: []string{"m1"}, Spec: reboot}, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID},
		{&pb.ClusterOrgIssue{OrgId: "org-a", Spec: reboot}, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID},
		{&pb.ClusterOrgIssue{OrgId: "org-a", MinerIds: []string{"m1"}}, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID},
		{&pb.ClusterOrgIssue{OrgId: "org-a", MinerIds: []string{"m1"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE,
			Firmware: &pb.ArtifactRef{Sha256: strings.Repeat("a", 64), Size: 1}}}, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID},
		{&pb.ClusterOrgIssue{OrgId: "org-a", MinerIds: []string{"m1", "bad\x01"}, Spec: reboot}, pb.ClusterRefusal_CLUSTER_REFUSAL_INVALID},
		{&pb.ClusterOrgIssue{OrgId: "org-a", MinerIds: []string{"m1", "m9"}, Spec: reboot}, pb.ClusterRefusal_CLUSTER_REFUSAL_UNKNOWN_MINERS},
	} {
		r := req("org-a", cloudcluster.KindOrg, tc.m).(*pb.ClusterOrgIssueReply)
		if r.GetRefusal() != tc.want || r.GetError() == "" || r.GetCommandId() != "" {
			t.Fatalf("%v: %+v, want %v", tc.m, r, tc.want)
		}
	}
	if n := countTable(t, st, "commands"); n != 0 {
		t.Fatalf("%d commands recorded by refused requests", n)
	}

	// A real command to m1 and m2 (n1 has no stream: its part stays queued).
	rep, err := ms[0].m.OrgIssue(context.Background(), "org-a", grains.CommandRequest{MinerIDs: []string{"m1", "m2"},
		Action: pb.Action_ACTION_REBOOT, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id := rep.GetCommandId()
	update := func(grain string, u *pb.ClusterMinerUpdate) bool {
		t.Helper()
		return req(grain, cloudcluster.KindMiner, u).(*pb.ClusterMinerUpdateReply).GetApplied()
	}
	ok := &pb.MinerResult{MinerId: "m1", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}
	for name, u := range map[string]*pb.ClusterMinerUpdate{
		"names another miner":       {MinerId: "m2", CommandId: id, NodeId: "n1", Result: ok},
		"from a node not the owner": {MinerId: "m1", CommandId: id, NodeId: "n9", Result: ok},
		"unknown command":           {MinerId: "m1", CommandId: "nope", NodeId: "n1", Result: ok},
		"hostile command id":        {MinerId: "m1", CommandId: "x\x01", NodeId: "n1", Result: ok},
		"result for another miner":  {MinerId: "m1", CommandId: id, NodeId: "n1", Result: &pb.MinerResult{MinerId: "m2", Code: pb.ResultCode_RESULT_CODE_FAILED}},
	} {
		if update("m1", u) {
			t.Fatalf("%s: applied", name)
		}
	}
	c.ActorSystem.Root.Send(c.Get("m1", cloudcluster.KindMiner), &pb.ClusterMinerTrack{MinerId: "m2", CommandId: id})
	if !update("m1", &pb.ClusterMinerUpdate{MinerId: "m1", CommandId: id, NodeId: "n1", Result: ok}) {
		t.Fatal("the owner node's result was not applied")
	}
	if update("m1", &pb.ClusterMinerUpdate{MinerId: "m1", CommandId: id, NodeId: "n1", Result: ok, Done: true}) {
		t.Fatal("a resent result was applied twice")
	}
	if update("m1", &pb.ClusterMinerUpdate{MinerId: "m1", CommandId: id, NodeId: "n1", Ack: true, Code: pb.ResultCode_RESULT_CODE_REFUSED_SEQ}) {
		t.Fatal("a refusal after the final result was applied")
	}
	codes, err := st.OrgCommandResults(id)
	if err != nil || codes[pb.ResultCode_RESULT_CODE_SUCCEEDED] != 1 || codes[pb.ResultCode_RESULT_CODE_PENDING] != 1 {
		t.Fatalf("results %v %v", codes, err)
	}
}

// TestOrgCommandDeadlineOnInjectedClock: the command deadline runs on the configured clock: with a fake
// clock, a command to miners of an offline node stays pending however long the wall clock runs, until the
// clock passes its deadline; then its miners are marked TIMEOUT.
func TestOrgCommandDeadlineOnInjectedClock(t *testing.T) {
	skipUnderRace(t)
	pg := testsvc.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	st := openStore(t, dsn)
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ms := startMembers(t, 1, func(int) cloudcluster.Config {
		cfg := memberConfig(t, openStore(t, dsn))
		cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, cloudcluster.NewTestAgent()
		cfg.Clock, cfg.CommandTimeout = clk, time.Minute
		cfg.Retention.Disabled = true
		return cfg
	})
	if err := st.PutNodeRecord(&pb.NodeRecord{NodeId: "n1", OrgId: "org-a"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}, {MinerId: "m2", NodeId: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	m := ms[0].m
	rep, err := m.OrgIssue(context.Background(), "org-a", grains.CommandRequest{MinerIDs: []string{"m1", "m2"},
		Action: pb.Action_ACTION_BLINK, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id := rep.GetCommandId()
	status := func() *pgstore.OrgCommand {
		t.Helper()
		c, err := m.OrgCommand(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clk.Advance(time.Minute - time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	if c := status(); !c.Active || c.Record.GetStatus() != pb.ResultCode_RESULT_CODE_PENDING {
		t.Fatalf("before the deadline: %v", c.Record)
	}
	clk.Advance(time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := status()
		if !c.Active {
			if c.Record.GetStatus() != pb.ResultCode_RESULT_CODE_TIMEOUT || c.Record.GetFinishedAtUnixMs() != clk.Now().UnixMilli() {
				t.Fatalf("after the deadline: %v", c.Record)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not timed out 10s (wall) after the fake clock passed the deadline: %v", c.Record)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
