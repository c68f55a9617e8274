package cloudcluster_test

import (
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/cloudcluster"
	"github.com/hashfleet/hashfleet/server/lease"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

// TestGrainsRefuseMalformed: grain messages that are malformed, name another node or pair, or come from a
// link that is not the node's current one change nothing and are answered with a clear refusal.
func TestGrainsRefuseMalformed(t *testing.T) {
	bs, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lease.NewBadger(bs.DB())
	if err != nil {
		t.Fatal(err)
	}
	cfg := cloudcluster.DefaultConfig()
	cfg.Provider, cfg.TestAgent = cloudcluster.ProviderTest, cloudcluster.NewTestAgent()
	cfg.Port, cfg.Store, cfg.LeaseStore, cfg.Logger = testsvc.FreePort(t), cloudcluster.NewLocal(bs), ls, quiet
	ms := startMembers(t, 1, func(int) cloudcluster.Config { return cfg })
	t.Cleanup(func() { _ = bs.Close() })
	c := ms[0].m.Cluster()
	req := func(identity, kind string, msg any) any {
		t.Helper()
		res, err := c.Request(identity, kind, msg)
		if err != nil {
			t.Fatalf("%s/%s %T: %v", kind, identity, msg, err)
		}
		return res
	}
	status := func() *pb.ClusterNodeStatusReply {
		return req("n1", cloudcluster.KindNode, &pb.ClusterNodeStatus{NodeId: "n1"}).(*pb.ClusterNodeStatusReply)
	}

	// Attach without a link, or naming another node: refused, nothing attached.
	for _, m := range []*pb.ClusterAttachStream{
		{NodeId: "n1"},
		{NodeId: "n1", Link: &pb.ClusterLinkRef{Address: "127.0.0.1:1"}},
		{NodeId: "other", Link: &pb.ClusterLinkRef{Address: "127.0.0.1:1", Id: "x"}},
	} {
		req("n1", cloudcluster.KindNode, m)
		if st := status(); st.GetConnected() {
			t.Fatalf("malformed attach %v attached: %+v", m, st)
		}
	}
	// Issue with a bad command id, or for another node.
	for _, m := range []*pb.ClusterIssueCommand{{NodeId: "n1", CommandId: ""}, {NodeId: "n1", CommandId: "bad\x01id"},
		{NodeId: "n2", CommandId: "ok"}} {
		r := req("n1", cloudcluster.KindNode, m).(*pb.ClusterIssueReply)
		if !strings.Contains(r.GetError(), "invalid") || r.GetSeq() != 0 {
			t.Fatalf("issue %v: %+v", m, r)
		}
	}
	// A real command, queued with no stream; a result from a link that is not current does not dequeue it.
	r := req("n1", cloudcluster.KindNode, &pb.ClusterIssueCommand{NodeId: "n1", CommandId: "c1"}).(*pb.ClusterIssueReply)
	if r.GetError() != "" || r.GetSeq() != 1 || r.GetSent() {
		t.Fatalf("issue c1: %+v", r)
	}
	c.ActorSystem.Root.Send(c.Get("n1", cloudcluster.KindNode), &pb.ClusterNodeFrame{NodeId: "n1",
		Link:  &pb.ClusterLinkRef{Address: "127.0.0.1:1", Id: "stale"},
		Frame: &pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: &pb.CommandResultReport{CommandId: "c1", MonotonicSeq: 1, Done: true}}}})
	status() // the frame was handled before this request
	if _, q, _ := bs.NodeQueue("n1"); len(q) != 1 {
		t.Fatalf("a stale link's report dequeued the command: queue %v", q)
	}
	// Telemetry with a hostile miner id: that sample is refused, the rest applied once.
	ir := req("n1", cloudcluster.KindNode, &pb.ClusterIngestTelemetry{Batch: &pb.TelemetryBatch{NodeId: "n1", BatchSeq: 1,
		Samples: []*pb.Telemetry{{MinerId: "m1"}, {MinerId: ""}, {MinerId: strings.Repeat("x", 300)}}}}).(*pb.ClusterIngestReply)
	if ir.GetApplied() != 1 || ir.GetRejected() != 2 || ir.GetDuplicate() {
		t.Fatalf("ingest: %+v", ir)
	}
	ir = req("n1", cloudcluster.KindNode, &pb.ClusterIngestTelemetry{Batch: &pb.TelemetryBatch{NodeId: "n1", BatchSeq: 1}}).(*pb.ClusterIngestReply)
	if !ir.GetDuplicate() {
		t.Fatalf("replayed batch: %+v", ir)
	}
	// A lease request that reaches another pair's grain is denied.
	d, ok := req("p1", cloudcluster.KindLease, &pb.LeaseRequest{PairId: "p2", NodeId: "n-a", Op: pb.LeaseOp_LEASE_OP_ACQUIRE}).(*pb.LeaseDenied)
	if !ok || !strings.Contains(d.GetReason(), "invalid lease request") {
		t.Fatalf("misrouted lease request: %v", d)
	}
	// A lease grain whose pair was never declared refuses to grant.
	d, ok = req("p1", cloudcluster.KindLease, &pb.LeaseRequest{PairId: "p1", NodeId: "n-a", Op: pb.LeaseOp_LEASE_OP_ACQUIRE}).(*pb.LeaseDenied)
	if !ok {
		t.Fatalf("undeclared pair granted: %v", d)
	}
}
