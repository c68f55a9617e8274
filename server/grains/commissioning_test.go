package grains

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func cdev(id, node string) *pb.Device {
	return &pb.Device{MinerId: id, NodeId: node, Address: "10.0.0.1:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
}

func TestMergeScan(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	rec := &pb.ScanRecord{ScanId: "scan-1", NodeId: "n1", State: ScanRequested}
	r1 := &pb.ScanReport{ScanId: "scan-1", State: ScanRunning, ReportSeq: 1, Total: 10, Probed: 4, FoundCount: 1,
		Found: []*pb.Device{{MinerId: "a", Address: "10.0.0.1:4028", LoginEnvelope: []byte("nodes never send this")}}, Errors: []string{"10.0.0.3: not a miner"}}
	rec = mergeScan(rec, r1, t0)
	if rec.State != ScanRunning || rec.Probed != 4 || len(rec.Found) != 1 || len(rec.Errors) != 1 || rec.Found[0].LoginEnvelope != nil {
		t.Fatalf("after the first report: %+v", rec)
	}
	// A replay, or an older report arriving late, changes no counter and adds no device twice.
	again := mergeScan(rec, r1, t0)
	if again.Probed != 4 || len(again.Found) != 1 {
		t.Fatalf("replayed report: %+v", again)
	}
	old := mergeScan(rec, &pb.ScanReport{ScanId: "scan-1", State: ScanRunning, ReportSeq: 1, Probed: 2}, t0)
	if old.Probed != 4 {
		t.Fatalf("older report moved the counters back: %+v", old)
	}
	// Final parts: every part is final; devices upsert; the record never goes back to running.
	fin := &pb.ScanReport{ScanId: "scan-1", State: ScanDone, ReportSeq: 2, Total: 10, Probed: 10, FoundCount: 2,
		Found: []*pb.Device{{MinerId: "a", Address: "10.0.0.1:4028", Model: "S19"}, {MinerId: "b"}}, FinishedAtUnixMs: 2_000_000}
	rec = mergeScan(rec, fin, t0)
	late := mergeScan(rec, &pb.ScanReport{ScanId: "scan-1", State: ScanRunning, ReportSeq: 9, Probed: 5}, t0)
	if rec.State != ScanDone || rec.Probed != 10 || len(rec.Found) != 2 || rec.Found[0].Model != "S19" || rec.FinishedAtUnixMs != 2_000_000 ||
		late.State != ScanDone || late.Probed != 10 {
		t.Fatalf("final: %+v, after a late running report: %+v", rec, late)
	}
	// Errors are bounded.
	many := &pb.ScanReport{ScanId: "scan-1", State: ScanDone, Errors: make([]string, 3*maxScanErrors)}
	if got := mergeScan(rec, many, t0); len(got.Errors) != maxScanErrors {
		t.Fatalf("%d errors kept, want %d", len(got.Errors), maxScanErrors)
	}
}

func TestPlanScanNeverClaims(t *testing.T) {
	owned := map[string]*pb.Device{"owned": cdev("owned", "n2")}
	find := func(id string) (*pb.Device, bool) { d, ok := owned[id]; return d, ok }
	var p eventsPlan
	ok := planScan(&p, "n1", &pb.ScanReport{ScanId: "scan-1", Found: []*pb.Device{{MinerId: "new"}, {MinerId: "owned"}, {MinerId: "new"}, {MinerId: ""}}}, find)
	if !ok || len(p.scans) != 1 || len(p.pending) != 1 || p.pending[0].GetMinerId() != "new" || p.pending[0].GetNodeId() != "n1" {
		t.Fatalf("plan: ok %v scans %d pending %v", ok, len(p.scans), p.pending)
	}
	if planScan(&p, "n1", &pb.ScanReport{ScanId: "not-a-scan-id"}, find) || planScan(&p, "n1", nil, find) {
		t.Fatal("a report with a foreign or no scan id was accepted")
	}
	// Even a trusted node's scan leaves devices pending (planEvents with trust set).
	ev := planEvents("n1", []*pb.Event{{Kind: pb.EventKind_EVENT_KIND_SCAN, Scan: &pb.ScanReport{ScanId: "scan-2", Found: []*pb.Device{{MinerId: "x"}}}}},
		func(string) (known, bool) { return known{}, false }, true, time.Now())
	if len(ev.devices) != 0 || len(ev.pending) != 1 {
		t.Fatalf("trusted node's scan: registered %v, pending %v", ev.devices, ev.pending)
	}
}

func TestPairingTarget(t *testing.T) {
	pair := OwnerPolicy{PartnerOf: func(n string) string { return map[string]string{"n1": "n1b", "n1b": "n1"}[n] }}
	tests := []struct {
		name       string
		node       string
		pending    []*pb.Device
		registered *pb.Device
		policy     OwnerPolicy
		want       string
		err        error
	}{
		{"discovered by one node", "", []*pb.Device{cdev("a", "n1")}, nil, OwnerPolicy{}, "n1", nil},
		{"named node", "n2", []*pb.Device{cdev("a", "n1"), cdev("a", "n2")}, nil, OwnerPolicy{}, "n2", nil},
		{"ambiguous", "", []*pb.Device{cdev("a", "n1"), cdev("a", "n2")}, nil, OwnerPolicy{}, "", ErrInvalidPairing},
		{"never discovered", "", nil, nil, OwnerPolicy{}, "", ErrUnknownMiner},
		{"not discovered by the node named", "n3", []*pb.Device{cdev("a", "n1")}, nil, OwnerPolicy{}, "", ErrUnknownMiner},
		{"re-pair to its owner", "", nil, cdev("a", "n1"), OwnerPolicy{}, "n1", nil},
		{"owned by another node", "", []*pb.Device{cdev("a", "n2")}, cdev("a", "n1"), OwnerPolicy{}, "", ErrOwnedElsewhere},
		{"warm-standby partner of the owner", "", []*pb.Device{cdev("a", "n1b")}, cdev("a", "n1"), pair, "n1b", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, d, err := pairingTarget("a", tc.node, tc.pending, tc.registered, tc.policy)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want || d.GetNodeId() != tc.want || d.GetMinerId() != "a" {
				t.Fatalf("target %q device %+v err %v, want %q", got, d, err, tc.want)
			}
		})
	}
}

func TestApplyPairing(t *testing.T) {
	now := time.UnixMilli(5000)
	rec := &pb.PairingRecord{PairingId: "pair-1", NodeId: "n1", Devices: []*pb.DevicePairing{
		{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_PENDING, Device: cdev("a", "n1")},
		{MinerId: "b", Code: pb.ResultCode_RESULT_CODE_PENDING, Device: cdev("b", "n1")},
		{MinerId: "c", Code: pb.ResultCode_RESULT_CODE_PENDING, Device: cdev("c", "n1")},
	}}
	applyPairingAck(rec, pb.ResultCode_RESULT_CODE_RUNNING, "", now)
	if rec.Devices[0].Code != pb.ResultCode_RESULT_CODE_RUNNING || rec.FinishedAtUnixMs != 0 {
		t.Fatalf("after the ack: %+v", rec)
	}
	paired := applyPairingResult(rec, []*pb.MinerResult{{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED},
		{MinerId: "b", Code: pb.ResultCode_RESULT_CODE_WRONG_CREDENTIALS, Message: "refused"}, {MinerId: "zz", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}, now)
	if len(paired) != 1 || paired[0].GetMinerId() != "a" || rec.FinishedAtUnixMs != 0 {
		t.Fatalf("paired %v, record %+v", paired, rec)
	}
	// A final result is final: a duplicate report changes nothing; the last device finishes the record.
	if again := applyPairingResult(rec, []*pb.MinerResult{{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}, {MinerId: "c"}}, now); len(again) != 0 {
		t.Fatalf("re-reported device paired twice: %v", again)
	}
	if rec.FinishedAtUnixMs != now.UnixMilli() || PairingStatus(rec.Devices[1].Code) != "wrong_credentials" || PairingStatus(rec.Devices[2].Code) != "failed" {
		t.Fatalf("record %+v", rec)
	}
	// A refusal at the node's gate is every open device's result.
	rec2 := &pb.PairingRecord{Devices: []*pb.DevicePairing{{MinerId: "a", Code: pb.ResultCode_RESULT_CODE_PENDING}}}
	applyPairingAck(rec2, pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE, "bad signature", now)
	if rec2.Devices[0].Code != pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE || !strings.Contains(rec2.Devices[0].Message, "bad signature") || rec2.FinishedAtUnixMs == 0 {
		t.Fatalf("refused: %+v", rec2)
	}
}

func TestValidateScan(t *testing.T) {
	ok := ScanRequest{Targets: []string{"10.0.0.0/24"}, Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_PROTO}, CGMinerPorts: []int32{4028}}
	if err := validateScan(ok); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]ScanRequest{
		"no targets":          {},
		"bad port":            {Targets: []string{"10.0.0.1"}, ProtoPorts: []int32{70000}},
		"bad protocol":        {Targets: []string{"10.0.0.1"}, Protocols: []pb.Protocol{pb.Protocol_PROTOCOL_UNSPECIFIED}},
		"password, no user":   {Targets: []string{"10.0.0.1"}, Password: []byte("x")},
		"too many targets":    {Targets: make([]string, maxScanTargets+1)},
		"blank target":        {Targets: []string{" "}},
		"too many ports each": {Targets: []string{"10.0.0.1"}, TLSPorts: make([]int32, 9)},
	} {
		if err := validateScan(r); !errors.Is(err, ErrInvalidScan) {
			t.Errorf("%s: %v, want ErrInvalidScan", name, err)
		}
	}
}
