package rollout

import (
	"strings"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestBatchesKeepOrder(t *testing.T) {
	got := Batches([]string{"a", "b", "c", "d", "e"}, 2)
	if len(got) != 3 || strings.Join(got[0], ",") != "a,b" || strings.Join(got[2], ",") != "e" {
		t.Fatalf("%v", got)
	}
	if len(Batches(nil, 3)) != 0 {
		t.Fatal("batches of nothing")
	}
}

func ok() *pb.MinerResult { return &pb.MinerResult{Code: pb.ResultCode_RESULT_CODE_SUCCEEDED} }

func TestEvaluateGate(t *testing.T) {
	batch := []string{"m1", "m2", "m3"}
	res := map[string]*pb.MinerResult{"m1": ok(), "m2": ok(), "m3": ok()}
	pre := map[string]float64{"m1": 100, "m2": 100, "m3": 0}
	// All healthy (m3 was not hashing before: passes on the update's success).
	if g := Evaluate(batch, pre, map[string]float64{"m1": 95, "m2": 101, "m3": 0}, res, 0.9); !g.Passed || g.Reason != "" {
		t.Fatalf("healthy batch: %+v", g)
	}
	// One miner fell to 40%.
	g := Evaluate(batch, pre, map[string]float64{"m1": 40, "m2": 100}, res, 0.9)
	if g.Passed || !strings.Contains(g.Reason, "m1: hashrate 40.00 TH/s is 40% of 100.00 TH/s") || g.Miners[0].Passed || !g.Miners[1].Passed {
		t.Fatalf("degraded miner: %+v", g)
	}
	// No fresh sample after the update reads 0: fails.
	if g := Evaluate(batch, pre, map[string]float64{"m2": 100}, res, 0.9); g.Passed {
		t.Fatalf("no post sample passed: %+v", g)
	}
	// An update that failed fails the gate with its message.
	res["m2"] = &pb.MinerResult{Code: pb.ResultCode_RESULT_CODE_FAILED, Message: "flash write error"}
	if g := Evaluate(batch, pre, map[string]float64{"m1": 100, "m2": 100}, res, 0.9); g.Passed || !strings.Contains(g.Reason, "m2: update failed: flash write error") {
		t.Fatalf("failed update: %+v", g)
	}
	// No result at all.
	if g := Evaluate([]string{"x"}, nil, nil, nil, 0.9); g.Passed || !strings.Contains(g.Reason, "no result") {
		t.Fatalf("no result: %+v", g)
	}
}

func TestRequestValidate(t *testing.T) {
	good := Request{Site: "s", Firmware: &pb.ArtifactRef{Sha256: "x"}, BatchSize: 5, MinHashrateRatio: 0.9}
	if err := good.Validate(10); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Request){
		"both site and ids": func(r *Request) { r.MinerIDs = []string{"a"} },
		"neither":           func(r *Request) { r.Site = "" },
		"no artifact":       func(r *Request) { r.Firmware = nil },
		"zero batch":        func(r *Request) { r.BatchSize = 0 },
		"ratio above 1":     func(r *Request) { r.MinHashrateRatio = 1.5 },
		"ratio zero":        func(r *Request) { r.MinHashrateRatio = 0 },
		"negative settle":   func(r *Request) { r.Settle = -1 },
		"repeated ids":      func(r *Request) { r.Site, r.MinerIDs = "", []string{"a", "a"} },
		"too many":          func(r *Request) { r.Site, r.MinerIDs = "", make([]string, 11) },
	} {
		r := good
		mod(&r)
		if err := r.Validate(10); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
