package gate

import (
	"slices"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"pgregory.net/rapid"
)

func ts(wall int64, logical uint32) *pb.HLC {
	return &pb.HLC{WallMs: wall, Logical: logical, NodeId: "n1"}
}

func spec(a pb.Action) *pb.CommandSpec { return &pb.CommandSpec{Action: a} }

// localLog is a table of the newest local action per miner and field.
type localLog map[string]map[Field]LocalAction

func (l localLog) newest(id string, f Field) (LocalAction, bool) { la, ok := l[id][f]; return la, ok }

func TestReconcileRules(t *testing.T) {
	stopAt := func(h *pb.HLC) map[Field]LocalAction {
		return map[Field]LocalAction{FieldMining: {CommandID: "l1", Actor: "local:admin", Spec: spec(pb.Action_ACTION_STOP_MINING), HLC: h}}
	}
	curtailAt := func(h *pb.HLC) map[Field]LocalAction {
		return map[Field]LocalAction{FieldCurtailment: {CommandID: "l2", Actor: "local:admin", Spec: spec(pb.Action_ACTION_CURTAIL), HLC: h}}
	}
	power := func(w float64, h *pb.HLC) map[Field]LocalAction {
		return map[Field]LocalAction{FieldPower: {CommandID: "l3", Spec: &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: w}, HLC: h}}
	}
	cases := []struct {
		name      string
		spec      *pb.CommandSpec
		watermark *pb.HLC
		log       localLog
		run, held []string
		overrode  []string
	}{
		{"no local action: runs", spec(pb.Action_ACTION_START_MINING), nil, localLog{}, []string{"a", "b"}, nil, nil},
		{"start after an unseen local stop: held", spec(pb.Action_ACTION_START_MINING), nil, localLog{"a": stopAt(ts(100, 0))},
			[]string{"b"}, []string{"a"}, nil},
		{"start after a local stop the cloud had seen: runs", spec(pb.Action_ACTION_START_MINING), ts(100, 0), localLog{"a": stopAt(ts(100, 0))},
			[]string{"a", "b"}, nil, nil},
		{"watermark one logical tick behind: held", spec(pb.Action_ACTION_START_MINING), ts(100, 0), localLog{"a": stopAt(ts(100, 1))},
			[]string{"b"}, []string{"a"}, nil},
		{"watermark below the local action by wall time: held", spec(pb.Action_ACTION_START_MINING),
			ts(99, 7), localLog{"a": stopAt(ts(100, 0))}, []string{"b"}, []string{"a"}, nil},
		{"stop over a newer local stop: same intent, runs", spec(pb.Action_ACTION_STOP_MINING), nil, localLog{"a": stopAt(ts(100, 0))},
			[]string{"a", "b"}, nil, nil},
		{"curtail is safety: applied over a newer local uncurtail", spec(pb.Action_ACTION_CURTAIL), nil,
			localLog{"a": {FieldCurtailment: {Spec: spec(pb.Action_ACTION_UNCURTAIL), HLC: ts(5, 0)}}}, []string{"a", "b"}, nil, []string{"a"}},
		{"stop is safety: applied over a newer local start", spec(pb.Action_ACTION_STOP_MINING), nil,
			localLog{"a": {FieldMining: {Spec: spec(pb.Action_ACTION_START_MINING), HLC: ts(5, 0)}}}, []string{"a", "b"}, nil, []string{"a"}},
		{"start held by a local curtailment", spec(pb.Action_ACTION_START_MINING), nil, localLog{"b": curtailAt(ts(1, 0))},
			[]string{"a"}, []string{"b"}, nil},
		{"uncurtail held by a local stop", spec(pb.Action_ACTION_UNCURTAIL), nil, localLog{"a": stopAt(ts(1, 0))},
			[]string{"b"}, []string{"a"}, nil},
		{"reboot is a resume: held by a local stop", spec(pb.Action_ACTION_REBOOT), nil, localLog{"a": stopAt(ts(1, 0))},
			[]string{"b"}, []string{"a"}, nil},
		{"power target is its own field: a local stop does not hold it", &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000},
			nil, localLog{"a": stopAt(ts(1, 0))}, []string{"a", "b"}, nil, nil},
		{"power target held by a newer different local target", &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000},
			nil, localLog{"a": power(2500, ts(1, 0))}, []string{"b"}, []string{"a"}, nil},
		{"power target equal to the newer local one: runs", &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 3000},
			nil, localLog{"a": power(3000, ts(1, 0))}, []string{"a", "b"}, nil, nil},
		{"blink touches no field", spec(pb.Action_ACTION_BLINK), nil, localLog{"a": stopAt(ts(1, 0))}, []string{"a", "b"}, nil, nil},
		{"pools: a local stop does not hold them", spec(pb.Action_ACTION_UPDATE_POOLS), nil, localLog{"a": stopAt(ts(1, 0))},
			[]string{"a", "b"}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run, held, over := Reconcile(c.spec, c.watermark, []string{"a", "b"}, c.log.newest)
			var heldIDs, overIDs []string
			for _, h := range held {
				heldIDs = append(heldIDs, h.MinerID)
				if msg := HeldMessage(h, c.watermark); msg == "" {
					t.Error("empty held message")
				}
			}
			for _, o := range over {
				overIDs = append(overIDs, o.MinerID)
			}
			if !slices.Equal(run, c.run) || !slices.Equal(heldIDs, c.held) || !slices.Equal(overIDs, c.overrode) {
				t.Fatalf("run %v held %v overridden %v; want %v %v %v", run, heldIDs, overIDs, c.run, c.held, c.overrode)
			}
		})
	}
}

// Properties: every miner is either run or held, never both; safety actions are never held; a watermark at
// or above every local action holds nothing.
func TestReconcileProperties(t *testing.T) {
	actions := []pb.Action{pb.Action_ACTION_REBOOT, pb.Action_ACTION_START_MINING, pb.Action_ACTION_STOP_MINING,
		pb.Action_ACTION_SET_POWER_TARGET, pb.Action_ACTION_BLINK, pb.Action_ACTION_CURTAIL, pb.Action_ACTION_UNCURTAIL,
		pb.Action_ACTION_UPDATE_POOLS}
	fields := []Field{FieldMining, FieldPower, FieldPools, FieldCurtailment}
	rapid.Check(t, func(t *rapid.T) {
		miners := []string{"a", "b", "c", "d"}
		log := localLog{}
		var top *pb.HLC
		for _, id := range miners {
			for _, f := range fields {
				if !rapid.Bool().Draw(t, "has") {
					continue
				}
				h := ts(rapid.Int64Range(0, 5).Draw(t, "wall"), uint32(rapid.IntRange(0, 3).Draw(t, "logical")))
				if log[id] == nil {
					log[id] = map[Field]LocalAction{}
				}
				log[id][f] = LocalAction{Spec: spec(rapid.SampledFrom(actions).Draw(t, "local")), HLC: h}
				if top == nil || h.GetWallMs() > top.GetWallMs() || (h.GetWallMs() == top.GetWallMs() && h.GetLogical() > top.GetLogical()) {
					top = h
				}
			}
		}
		a := rapid.SampledFrom(actions).Draw(t, "cloud")
		var wm *pb.HLC
		if rapid.Bool().Draw(t, "watermark") {
			wm = ts(rapid.Int64Range(0, 5).Draw(t, "wm"), 0)
		}
		run, held, _ := Reconcile(spec(a), wm, miners, log.newest)
		if len(run)+len(held) != len(miners) {
			t.Fatalf("run %v + held %v != %v", run, held, miners)
		}
		for _, h := range held {
			if slices.Contains(run, h.MinerID) {
				t.Fatalf("%s both run and held", h.MinerID)
			}
		}
		if IsSafety(a) && len(held) > 0 {
			t.Fatalf("safety action %s held on %v", a, held)
		}
		if _, held, _ := Reconcile(spec(a), top, miners, log.newest); len(held) > 0 {
			t.Fatalf("watermark %v at the newest local action still holds %v", top, held)
		}
	})
}
