package gate

import (
	"math"
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

type fixedGuard struct {
	ok  bool
	why string
}

func (f fixedGuard) AllowsPools([]*pb.Pool) (bool, string) { return f.ok, f.why }

func TestSiteControlShapes(t *testing.T) {
	sp := &pb.SitePolicy{Body: []byte("{}"), KeyId: "org/k1", Signature: []byte("s")}
	good := []*pb.CommandPayload{
		{SitePolicy: sp},
		{Curtail: &pb.CurtailRequest{EventId: "e1", TargetKw: 10}},
		{Curtail: &pb.CurtailRequest{EventId: "e1", Full: true, MinerIds: []string{"a", "b"}, EndAtUnixMs: 5}},
		{Curtail: &pb.CurtailRequest{EventId: "e1", Stop: true}},
	}
	for _, p := range good {
		if ids, err := controlIDs(p); err != nil || len(ids) != 1 {
			t.Errorf("%v: %v %v", p, ids, err)
		}
	}
	bad := map[string]*pb.CommandPayload{
		"unsigned policy":    {SitePolicy: &pb.SitePolicy{Body: []byte("{}")}},
		"empty policy":       {SitePolicy: &pb.SitePolicy{KeyId: "k", Signature: []byte("s")}},
		"huge policy":        {SitePolicy: &pb.SitePolicy{Body: make([]byte, MaxSitePolicyBytes+1), KeyId: "k", Signature: []byte("s")}},
		"no event id":        {Curtail: &pb.CurtailRequest{Full: true}},
		"control char in id": {Curtail: &pb.CurtailRequest{EventId: "a\x00b", Full: true}},
		"no target":          {Curtail: &pb.CurtailRequest{EventId: "e"}},
		"both targets":       {Curtail: &pb.CurtailRequest{EventId: "e", Full: true, TargetKw: 1}},
		"negative target":    {Curtail: &pb.CurtailRequest{EventId: "e", TargetKw: -1}},
		"NaN target":         {Curtail: &pb.CurtailRequest{EventId: "e", TargetKw: math.NaN()}},
		"empty miner":        {Curtail: &pb.CurtailRequest{EventId: "e", Full: true, MinerIds: []string{""}}},
		"negative end":       {Curtail: &pb.CurtailRequest{EventId: "e", Full: true, EndAtUnixMs: -1}},
		"two requests":       {Curtail: &pb.CurtailRequest{EventId: "e", Full: true}, SitePolicy: sp},
		"with miners":        {Curtail: &pb.CurtailRequest{EventId: "e", Full: true}, MinerIds: []string{"a"}},
		"with an action":     {SitePolicy: sp, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}},
		"policy and scan":    {SitePolicy: sp, Discovery: &pb.DiscoveryRequest{ScanId: "s"}},
		"too many miners":    {Curtail: &pb.CurtailRequest{EventId: "e", Full: true, MinerIds: make([]string, MaxCurtailMiners+1)}},
	}
	for name, p := range bad {
		if _, err := controlIDs(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecidePoolGuard(t *testing.T) {
	pools := &pb.CommandPayload{MinerIds: []string{"m"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_UPDATE_POOLS,
		Pools: []*pb.Pool{{Url: "stratum+tcp://evil.example:3333"}}}}
	in := input{nodeID: "n", cmd: &pb.ControlCommand{NodeId: "n", MonotonicSeq: 5}, payload: pools, mark: 4,
		owned: func(string) bool { return true }, pools: fixedGuard{false, "not trusted"}}
	v := decide(in)
	if v.code != pb.ResultCode_RESULT_CODE_REFUSED_POLICY || !v.consume || v.dispatch || !strings.Contains(v.msg, "not trusted") {
		t.Fatalf("untrusted pool: %+v", v)
	}
	in.pools = fixedGuard{true, ""}
	if v := decide(in); v.code != pb.ResultCode_RESULT_CODE_RUNNING || !v.dispatch {
		t.Fatalf("trusted pool: %+v", v)
	}
	// Other actions never ask the guard.
	in.pools = fixedGuard{false, "no"}
	in.payload = &pb.CommandPayload{MinerIds: []string{"m"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}}
	if v := decide(in); v.code != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("reboot: %+v", v)
	}
	// A site-control command without a handler is UNSUPPORTED, and consumes its seq.
	in.payload = &pb.CommandPayload{Curtail: &pb.CurtailRequest{EventId: "e", Full: true}}
	if v := decide(in); v.code != pb.ResultCode_RESULT_CODE_UNSUPPORTED || !v.consume {
		t.Fatalf("no handler: %+v", v)
	}
	in.controlSupported = true
	if v := decide(in); v.code != pb.ResultCode_RESULT_CODE_RUNNING || !v.dispatch || v.miners[0] != CurtailResultID("e") {
		t.Fatalf("curtail: %+v", v)
	}
}
