package grains

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TestPlanEventsSiteAutomation: automatic actions (RULE_FIRED) join the node's audit with the node's id; the
// batch's last curtailment status is kept; malformed ones are counted invalid, never applied.
func TestPlanEventsSiteAutomation(t *testing.T) {
	none := func(string) (known, bool) { return known{}, false }
	now := time.Unix(1_800_000_000, 0)
	rule := &pb.AuditRecord{CommandId: "auto:hot:m1:1", Actor: "automation:hot", LocalOrigin: true, NodeId: "forged"}
	evs := []*pb.Event{
		{Kind: pb.EventKind_EVENT_KIND_RULE_FIRED, Audit: rule, Rule: "hot"},
		{Kind: pb.EventKind_EVENT_KIND_RULE_FIRED}, // no record
		{Kind: pb.EventKind_EVENT_KIND_CURTAIL},    // no status
		{Kind: pb.EventKind_EVENT_KIND_CURTAIL, Curtail: &pb.CurtailStatus{EventId: "e", State: "ramping"}},
		{Kind: pb.EventKind_EVENT_KIND_CURTAIL, Curtail: &pb.CurtailStatus{EventId: "e", State: "holding"}},
	}
	p := planEvents("n1", evs, none, false, now)
	if len(p.audit) != 1 || p.audit[0].GetNodeId() != "n1" || p.audit[0].GetAtUnixMs() != now.UnixMilli() || p.audit[0].GetActor() != "automation:hot" {
		t.Fatalf("audit %v", p.audit)
	}
	if p.curtail.GetState() != "holding" {
		t.Fatalf("curtail %v", p.curtail)
	}
	if p.counts[resInvalid] != 2 || p.counts[resApplied] != 3 {
		t.Fatalf("counts %v", p.counts)
	}
	if rule.GetNodeId() != "forged" {
		t.Fatal("the event's record was modified in place")
	}
}

func TestSiteBookKeepsLatestPerNode(t *testing.T) {
	o := &Org{}
	o.sites.put(SiteNodeOutcome{Node: "a", CommandID: "curtail-e1-start-a"})
	o.sites.put(SiteNodeOutcome{Node: "b", CommandID: "curtail-e1-start-b"})
	o.sites.put(SiteNodeOutcome{Node: "a", CommandID: "curtail-e1-stop-a"})
	o.sites.put(SiteNodeOutcome{Node: "a", CommandID: "sitepol-v1-a"})
	got := o.siteOutcomeList(&siteOutcomes{prefix: curtailCmdPrefix, latest: true})
	if len(got) != 2 || got[0].CommandID != "curtail-e1-stop-a" || got[1].CommandID != "curtail-e1-start-b" {
		t.Fatalf("latest %v", got)
	}
	if all := o.siteOutcomeList(&siteOutcomes{prefix: "sitepol-v1-"}); len(all) != 1 {
		t.Fatalf("policy outcomes %v", all)
	}
	for i := range maxSiteOutcomes + 10 {
		o.sites.put(SiteNodeOutcome{Node: "a", CommandID: "x" + string(rune(i))})
	}
	if len(o.sites.outcomes) > maxSiteOutcomes || len(o.sites.order) > maxSiteOutcomes {
		t.Fatalf("book grew to %d", len(o.sites.outcomes))
	}
}
