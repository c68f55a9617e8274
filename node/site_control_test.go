package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/automation"
	"github.com/hashfleet/hashfleet/node/curtail"
	"github.com/hashfleet/hashfleet/node/gate"
	"github.com/hashfleet/hashfleet/node/internal/gatewaytest"
	"google.golang.org/protobuf/proto"
)

func controlCommand(t *testing.T, id string, seq uint64, p *pb.CommandPayload) *pb.ControlCommand {
	t.Helper()
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.ControlCommand{CommandId: id, Actor: "user:test", NodeId: "n1", MonotonicSeq: seq, Signature: []byte("sig-" + id),
		IdempotencyKey: "idem-" + id, Payload: b}
}

func finalResult(t *testing.T, gw *gatewaytest.Server, id string) *pb.CommandResultReport {
	t.Helper()
	var out *pb.CommandResultReport
	waitUntil(t, 10*time.Second, "final result of "+id, nil, func() bool {
		for _, r := range gw.Results() {
			if r.GetCommandId() == id && r.GetDone() {
				out = r
				return true
			}
		}
		return false
	})
	return out
}

func ackOf(t *testing.T, gw *gatewaytest.Server, id string) *pb.CommandAck {
	t.Helper()
	var out *pb.CommandAck
	waitUntil(t, 10*time.Second, "ack of "+id, nil, func() bool {
		for _, a := range gw.Acks() {
			if a.GetCommandId() == id {
				out = a
				return true
			}
		}
		return false
	})
	return out
}

// TestSiteControlCommands drives site policies, the pool guard and curtailment through the node's command
// gate as the cloud does (node-control commands over the gateway stream), against simulated miners: a
// policy installs (and survives a restart, from the node's store), a tampered one is refused, a validly
// signed pool change to a pool the policy does not trust is refused at the node and audited while a trusted
// one runs, curtailment starts and stops by command and its state reaches the cloud as EVENT_KIND_CURTAIL
// events, and malformed site commands fail without running.
func TestSiteControlCommands(t *testing.T) {
	gw, err := gatewaytest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	s := startAutomationSite(t, siteOpts{miners: 6, poll: 300 * time.Millisecond, mutate: func(c *node.Config) {
		gw.SetDevices(c.Devices)
		c.Dial, c.Verifier, c.BatchInterval = gw.Dial, gate.InProcessVerifier{}, 50*time.Millisecond
	}, auto: tightCurtail()})
	ctx := context.Background()
	s.allMining(20*time.Second, nil)

	pol := automation.Policy{Version: 1}
	tp, err := automation.NewTrustedPools("stratum+tcp://*.trusted-pool.example:3333")
	if err != nil {
		t.Fatal(err)
	}
	pol.TrustedPools = tp
	signed := s.signPolicy(pol)
	gw.SendCommand(controlCommand(t, "pol-1", 1, &pb.CommandPayload{SitePolicy: signed}))
	if r := finalResult(t, gw, "pol-1"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED ||
		r.GetResults()[0].GetMinerId() != gate.SitePolicyResultID {
		t.Fatalf("policy result %v", r)
	}

	// A policy whose own signature does not verify is refused (the carrying command was fine).
	bad := proto.Clone(signed).(*pb.SitePolicy)
	bad.Body = []byte(strings.Replace(string(bad.Body), `"version":1`, `"version":2`, 1))
	gw.SendCommand(controlCommand(t, "pol-2", 2, &pb.CommandPayload{SitePolicy: bad}))
	if r := finalResult(t, gw, "pol-2"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_FAILED ||
		!strings.Contains(r.GetResults()[0].GetMessage(), "signature") {
		t.Fatalf("tampered policy result %v", r)
	}

	// The pool guard: an untrusted pool is refused at the node however validly the command is signed.
	victim := s.fleet.Miners()[0]
	before := len(victim.WriteLog())
	evil := &pb.CommandPayload{MinerIds: []string{victim.ID()}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS,
		Pools: []*pb.Pool{{Url: "stratum+tcp://pool.evil.example:3333", User: "thief"}}}}
	gw.SendCommand(controlCommand(t, "pools-evil", 3, evil))
	if a := ackOf(t, gw, "pools-evil"); a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_POLICY || !strings.Contains(a.GetMessage(), "trusted") {
		t.Fatalf("untrusted pool ack %v", a)
	}
	good := &pb.CommandPayload{MinerIds: []string{victim.ID()}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS,
		Pools: []*pb.Pool{{Url: "stratum+tcp://eu.trusted-pool.example:3333", User: "us"}}}}
	gw.SendCommand(controlCommand(t, "pools-good", 4, good))
	if a := ackOf(t, gw, "pools-good"); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("trusted pool ack %v", a)
	}
	finalResult(t, gw, "pools-good")
	for _, w := range victim.WriteLog()[before:] {
		if strings.Contains(w.Parameter, "evil") {
			t.Fatalf("untrusted pool written to the miner: %+v", w)
		}
	}
	audit, err := s.node.Audit(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, r := range audit {
		if r.GetCommandId() == "pools-evil" && r.GetCode() == pb.ResultCode_RESULT_CODE_REFUSED_POLICY {
			refused = true
		}
	}
	if !refused {
		t.Fatal("the refused pool change is not in the audit log")
	}

	// Curtailment by command: full, two miners; then stopped.
	ids := []string{s.fleet.Miners()[1].ID(), s.fleet.Miners()[2].ID()}
	gw.SendCommand(controlCommand(t, "cur-1", 5, &pb.CommandPayload{Curtail: &pb.CurtailRequest{EventId: "ev-1", Full: true, MinerIds: ids}}))
	if r := finalResult(t, gw, "cur-1"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED ||
		r.GetResults()[0].GetMinerId() != gate.CurtailResultID("ev-1") {
		t.Fatalf("curtail result %v", r)
	}
	waitUntil(t, 20*time.Second, "both miners asleep and the state at the cloud", nil, func() bool {
		for _, id := range ids {
			if !s.fleet.Miner(id).Snapshot().Sleeping {
				return false
			}
		}
		for _, e := range gw.Events() {
			if c := e.GetCurtail(); e.GetKind() == pb.EventKind_EVENT_KIND_CURTAIL && c.GetEventId() == "ev-1" && c.GetFull() &&
				len(c.GetCurtailed()) == 2 {
				return true
			}
		}
		return false
	})
	if s.fleet.Miners()[3].Snapshot().Sleeping {
		t.Fatal("a miner outside the scope was curtailed")
	}
	gw.SendCommand(controlCommand(t, "cur-2", 6, &pb.CommandPayload{Curtail: &pb.CurtailRequest{EventId: "ev-1", Stop: true}}))
	if r := finalResult(t, gw, "cur-2"); r.GetResults()[0].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("stop result %v", r)
	}
	waitUntil(t, 20*time.Second, "the event done at the cloud", nil, func() bool {
		for _, e := range gw.Events() {
			if c := e.GetCurtail(); c.GetEventId() == "ev-1" && c.GetState() == "done" {
				return !s.fleet.Miner(ids[0]).Snapshot().Sleeping && !s.fleet.Miner(ids[1]).Snapshot().Sleeping
			}
		}
		return false
	})

	// Malformed site commands consume their seq and fail without running.
	for i, p := range []*pb.CommandPayload{
		{Curtail: &pb.CurtailRequest{EventId: "ev-2"}},                                     // no target
		{Curtail: &pb.CurtailRequest{EventId: "ev-3", Full: true, TargetKw: 5}},            // both targets
		{Curtail: &pb.CurtailRequest{EventId: "", Full: true}},                             // no id
		{Curtail: &pb.CurtailRequest{EventId: "ev-4", Full: true, MinerIds: []string{""}}}, // empty miner id
		{SitePolicy: &pb.SitePolicy{Body: []byte("{}")}},                                   // unsigned
		{SitePolicy: signed, Curtail: &pb.CurtailRequest{EventId: "ev-5", Full: true}},     // two requests
		{Curtail: &pb.CurtailRequest{EventId: "ev-6", Full: true}, MinerIds: []string{ids[0]}},
	} {
		id := "bad-" + string(rune('a'+i))
		gw.SendCommand(controlCommand(t, id, uint64(7+i), p))
		if a := ackOf(t, gw, id); a.GetCode() != pb.ResultCode_RESULT_CODE_FAILED {
			t.Fatalf("%s: ack %v", id, a)
		}
	}
	if d, err := s.node.CurtailDetail(ctx); err != nil || d.Event.ID != "" {
		t.Fatalf("a malformed command started an event: %+v %v", d.Event, err)
	}

	// An event in progress when the node restarts is resumed from the store, and released by it.
	held := s.fleet.Miners()[4]
	gw.SendCommand(controlCommand(t, "cur-3", 20, &pb.CommandPayload{Curtail: &pb.CurtailRequest{EventId: "ev-9", Full: true,
		MinerIds: []string{held.ID()}}}))
	finalResult(t, gw, "cur-3")
	waitUntil(t, 20*time.Second, "the miner curtailed and verified", nil, func() bool {
		d, err := s.node.CurtailDetail(ctx)
		return err == nil && d.MinersCurtailed == 1 && held.Snapshot().Sleeping
	})

	// The installed policy is in the node's store: a restart (WAN or not) runs it again.
	s.restart()
	waitUntil(t, 10*time.Second, "policy reloaded from the store", nil, func() bool {
		st, err := s.node.AutomationStatus(ctx)
		return err == nil && st.PolicyVersion == 1 && len(st.TrustedPools) == 1 && st.PolicyError == ""
	})
	d, err := s.node.CurtailDetail(ctx)
	if err != nil || d.Event.ID != "ev-9" || d.Phase != curtail.PhaseCurtailing {
		t.Fatalf("after restart: %+v %v", d, err)
	}
	if _, err := s.node.Curtail(ctx, &pb.CurtailRequest{EventId: "ev-9", Stop: true}, "local:test"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the resumed event's miner released", nil, func() bool {
		d, err := s.node.CurtailDetail(ctx)
		return err == nil && d.Phase == curtail.PhaseIdle && !held.Snapshot().Sleeping
	})
	if _, err := s.node.Curtail(ctx, &pb.CurtailRequest{EventId: "ev-9", Stop: true}, "local:test"); !errors.Is(err, curtail.ErrUnknownEvent) {
		t.Fatalf("second stop: %v", err)
	}
}

// tightCurtail is a curtailment config for small, fast tests.
func tightCurtail() node.SiteAutomationConfig {
	return node.SiteAutomationConfig{BoardInterval: 100 * time.Millisecond, Curtail: curtailFast()}
}
