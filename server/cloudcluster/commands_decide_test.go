package cloudcluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"pgregory.net/rapid"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func res(code pb.ResultCode) *pb.MinerResult { return &pb.MinerResult{MinerId: "m1", Code: code} }

func TestDecideMinerUpdate(t *testing.T) {
	const (
		pending = pb.ResultCode_RESULT_CODE_PENDING
		running = pb.ResultCode_RESULT_CODE_RUNNING
		ok      = pb.ResultCode_RESULT_CODE_SUCCEEDED
		failed  = pb.ResultCode_RESULT_CODE_FAILED
		refused = pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE
		timeout = pb.ResultCode_RESULT_CODE_TIMEOUT
	)
	for _, tc := range []struct {
		name    string
		cur     pb.ResultCode
		u       *pb.ClusterMinerUpdate
		want    pb.ResultCode
		changed bool
	}{
		{"ack running", pending, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true, Code: running}, running, true},
		{"ack running again", running, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true, Code: running}, running, false},
		{"ack duplicate is progress", pending, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true, Code: pb.ResultCode_RESULT_CODE_DUPLICATE}, running, true},
		{"ack refusal is final", pending, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true, Code: refused}, refused, true},
		{"ack without a code", pending, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true}, pending, false},
		{"result", running, &pb.ClusterMinerUpdate{MinerId: "m1", Result: res(ok)}, ok, true},
		{"result with done", pending, &pb.ClusterMinerUpdate{MinerId: "m1", Result: res(ok), Done: true}, ok, true},
		{"result without a code fails", running, &pb.ClusterMinerUpdate{MinerId: "m1", Result: res(pb.ResultCode_RESULT_CODE_UNSPECIFIED)}, failed, true},
		{"done without a result fails", running, &pb.ClusterMinerUpdate{MinerId: "m1", Done: true}, failed, true},
		{"final never changes", ok, &pb.ClusterMinerUpdate{MinerId: "m1", Result: res(failed), Done: true}, ok, false},
		{"timeout is final", timeout, &pb.ClusterMinerUpdate{MinerId: "m1", Result: res(ok)}, timeout, false},
		{"progress after final ignored", ok, &pb.ClusterMinerUpdate{MinerId: "m1", Ack: true, Code: running}, ok, false},
		{"another miner's update", pending, &pb.ClusterMinerUpdate{MinerId: "m2", Result: res(ok)}, pending, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cur := res(tc.cur)
			got, changed := decideMinerUpdate(cur, tc.u, t0)
			if got.GetCode() != tc.want || changed != tc.changed {
				t.Fatalf("got %v changed %v, want %v %v", got.GetCode(), changed, tc.want, tc.changed)
			}
			if cur.GetCode() != tc.cur {
				t.Fatal("the current result was modified in place")
			}
			if changed && grains.IsFinalResult(got.GetCode()) && got.GetFinishedAtUnixMs() == 0 {
				t.Fatal("a final result without a finish time")
			}
		})
	}
}

// TestDecideMinerUpdateProperty: whatever sequence of updates and timeouts arrives (duplicates, reorders,
// other miners' updates), a final result never changes afterwards and every change is reported.
func TestDecideMinerUpdateProperty(t *testing.T) {
	codes := []pb.ResultCode{pb.ResultCode_RESULT_CODE_UNSPECIFIED, pb.ResultCode_RESULT_CODE_PENDING, pb.ResultCode_RESULT_CODE_RUNNING,
		pb.ResultCode_RESULT_CODE_DUPLICATE, pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_FAILED,
		pb.ResultCode_RESULT_CODE_REFUSED_SEQ, pb.ResultCode_RESULT_CODE_TIMEOUT}
	rapid.Check(t, func(t *rapid.T) {
		cur := &pb.MinerResult{MinerId: "m1", Code: pb.ResultCode_RESULT_CODE_PENDING}
		var final *pb.MinerResult
		n := rapid.IntRange(1, 20).Draw(t, "steps")
		for i := range n {
			now := t0.Add(time.Duration(i) * time.Second)
			var next *pb.MinerResult
			var changed bool
			if rapid.IntRange(0, 9).Draw(t, "timeout") == 0 {
				next, changed = decideTimeout(cur, time.Minute, now)
			} else {
				u := &pb.ClusterMinerUpdate{MinerId: rapid.SampledFrom([]string{"m1", "m1", "m2"}).Draw(t, "miner"),
					Ack: rapid.Bool().Draw(t, "ack"), Code: rapid.SampledFrom(codes).Draw(t, "ack_code"), Done: rapid.Bool().Draw(t, "done")}
				if rapid.Bool().Draw(t, "has_result") {
					u.Result = &pb.MinerResult{MinerId: u.MinerId, Code: rapid.SampledFrom(codes).Draw(t, "code")}
				}
				next, changed = decideMinerUpdate(cur, u, now)
			}
			if final != nil && (changed || next.GetCode() != final.GetCode() || next.GetFinishedAtUnixMs() != final.GetFinishedAtUnixMs()) {
				t.Fatalf("final %v changed to %v", final, next)
			}
			if !changed && next.GetCode() != cur.GetCode() {
				t.Fatalf("unreported change %v → %v", cur, next)
			}
			cur = next
			if final == nil && grains.IsFinalResult(cur.GetCode()) {
				final = cur
			}
		}
	})
}

func TestMinerUpdates(t *testing.T) {
	part := pgstore.CommandPart{NodeID: "n1", MinerIDs: []string{"a", "b", "c"}, Seq: 4}
	ack := &pb.NodeToCloud{Msg: &pb.NodeToCloud_Ack{Ack: &pb.CommandAck{CommandId: "c1", MonotonicSeq: 4, Code: pb.ResultCode_RESULT_CODE_RUNNING}}}
	us := minerUpdates("n1", part, ack)
	if len(us) != 3 || !us[0].GetAck() || us[2].GetMinerId() != "c" || us[1].GetSeq() != 4 || us[1].GetNodeId() != "n1" {
		t.Fatalf("ack updates %v", us)
	}
	report := &pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: &pb.CommandResultReport{CommandId: "c1", MonotonicSeq: 4, Done: true,
		Results: []*pb.MinerResult{{MinerId: "b", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}, {MinerId: "zz", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED},
			{MinerId: "b", Code: pb.ResultCode_RESULT_CODE_FAILED}}}}}
	us = minerUpdates("n1", part, report)
	got := map[string]string{}
	for _, u := range us {
		if !u.GetDone() {
			t.Fatalf("update without done: %v", u)
		}
		got[u.GetMinerId()] = u.GetResult().GetCode().String()
	}
	if len(us) != 3 || got["b"] != "RESULT_CODE_SUCCEEDED" || got["a"] != "RESULT_CODE_UNSPECIFIED" || got["zz"] != "" {
		t.Fatalf("report updates %v", got)
	}
	partial := &pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: &pb.CommandResultReport{CommandId: "c1", MonotonicSeq: 4,
		Results: []*pb.MinerResult{{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_RUNNING}}}}}
	if us := minerUpdates("n1", part, partial); len(us) != 1 || us[0].GetMinerId() != "a" || us[0].GetDone() {
		t.Fatalf("partial report updates %v", us)
	}
	if us := minerUpdates("n1", part, &pb.NodeToCloud{Msg: &pb.NodeToCloud_Hello{}}); us != nil {
		t.Fatalf("hello gave updates %v", us)
	}
}

func TestOrgCommandDecisions(t *testing.T) {
	owners := map[string]pgstore.MinerOwner{"a": {MinerID: "a", NodeID: "n2", OrgID: "o1"}, "b": {MinerID: "b", NodeID: "n1", OrgID: "o1"},
		"c": {MinerID: "c", NodeID: "n1", OrgID: "o1"}, "x": {MinerID: "x", NodeID: "n9", OrgID: "o2"}, "y": {MinerID: "y", NodeID: "", OrgID: "o1"}}
	if u := unownedMiners([]string{"a", "x", "b", "nope", "y"}, owners, "o1"); strings.Join(u, ",") != "x,nope,y" {
		t.Fatalf("unowned %v", u)
	}
	parts := partsOf([]string{"c", "a", "b"}, map[string]string{"a": "n2", "b": "n1", "c": "n1"})
	if len(parts) != 2 || parts[0].NodeID != "n1" || strings.Join(parts[0].MinerIDs, ",") != "b,c" || parts[1].NodeID != "n2" {
		t.Fatalf("parts %+v", parts)
	}
	open := map[string]*pgstore.MinerCommand{"c2": {Deadline: t0.Add(time.Second)}, "c1": {Deadline: t0}, "c3": {Deadline: t0.Add(-time.Second)}}
	if d := dueCommands(open, t0); strings.Join(d, ",") != "c1,c3" {
		t.Fatalf("due %v", d)
	}
	if at, ok := nextDeadline(open); !ok || !at.Equal(t0.Add(-time.Second)) {
		t.Fatalf("next deadline %v %v", at, ok)
	}
	if _, ok := nextDeadline(nil); ok {
		t.Fatal("deadline of nothing")
	}
	if r, ch := decideTimeout(res(pb.ResultCode_RESULT_CODE_RUNNING), time.Minute, t0); !ch || r.GetCode() != pb.ResultCode_RESULT_CODE_TIMEOUT {
		t.Fatalf("timeout %v %v", r, ch)
	}
	if _, ch := decideTimeout(res(pb.ResultCode_RESULT_CODE_SUCCEEDED), time.Minute, t0); ch {
		t.Fatal("timeout changed a final result")
	}
}

func TestValidateOrgCommand(t *testing.T) {
	ok := grains.CommandRequest{MinerIDs: []string{"a", "b"}, Action: pb.Action_ACTION_SET_COOLING, CoolingMode: "manual", FanPWM: 40,
		IdempotencyKey: "k", Actor: "x"}
	if err := validateOrgCommand(ok, 10); err != nil {
		t.Fatal(err)
	}
	// What the Org grain receives is what the API validated.
	back := requestOf(&pb.ClusterOrgIssue{MinerIds: ok.MinerIDs, Spec: specOf(ok), IdempotencyKey: "k", Actor: "x"})
	if back.CoolingMode != "manual" || back.FanPWM != 40 || !grains.SameCommand(grains.NewCommandRecord("id", ok, t0), back) {
		t.Fatalf("round trip %+v", back)
	}
	many := make([]string, 11)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	for name, req := range map[string]grains.CommandRequest{
		"empty":        {Action: pb.Action_ACTION_REBOOT},
		"too many":     {MinerIDs: many, Action: pb.Action_ACTION_REBOOT},
		"duplicate":    {MinerIDs: []string{"a", "a"}, Action: pb.Action_ACTION_REBOOT},
		"bad id":       {MinerIDs: []string{"a\x01b"}, Action: pb.Action_ACTION_REBOOT},
		"no action":    {MinerIDs: []string{"a"}},
		"pools":        {MinerIDs: []string{"a"}, Action: pb.Action_ACTION_UPDATE_POOLS, Pools: []*pb.Pool{{Url: "stratum+tcp://p:3333"}}},
		"password":     {MinerIDs: []string{"a"}, Action: pb.Action_ACTION_UPDATE_PASSWORD, NewPassword: []byte("pw")},
		"power target": {MinerIDs: []string{"a"}, Action: pb.Action_ACTION_SET_POWER_TARGET},
	} {
		if err := validateOrgCommand(req, 10); !errors.Is(err, grains.ErrInvalidCommand) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
