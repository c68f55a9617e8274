package gate

import (
	"slices"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Node-control commands (discovery, pairing) pass the authenticity checks like any command but not the
// ownership check: a pairing names devices the node does not own yet.
func TestDecideControl(t *testing.T) {
	cmd := &pb.ControlCommand{CommandId: "c6", NodeId: "n1", MonotonicSeq: 6, Signature: []byte("s6")}
	scan := &pb.CommandPayload{Discovery: &pb.DiscoveryRequest{ScanId: "scan-1", Targets: []string{"10.0.0.0/24"}}}
	pair := &pb.CommandPayload{Pairing: &pb.PairingRequest{PairingId: "pair-1", Devices: []*pb.Device{{MinerId: "new-1"}, {MinerId: "new-2"}}}}
	tests := []struct {
		name      string
		payload   *pb.CommandPayload
		supported bool
		verifyErr error
		code      pb.ResultCode
		consume   bool
		ids       []string
	}{
		{"scan", scan, true, nil, pb.ResultCode_RESULT_CODE_RUNNING, true, []string{"scan/scan-1"}},
		{"pairing of unowned devices", pair, true, nil, pb.ResultCode_RESULT_CODE_RUNNING, true, []string{"new-1", "new-2"}},
		{"node without commissioning", pair, false, nil, pb.ResultCode_RESULT_CODE_UNSUPPORTED, true, []string{"new-1", "new-2"}},
		{"forged pairing", pair, true, ErrBadSignature, pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE, false, nil},
		{"both at once", &pb.CommandPayload{Discovery: scan.Discovery, Pairing: pair.Pairing}, true, nil, pb.ResultCode_RESULT_CODE_FAILED, true, nil},
		{"miners next to a scan", &pb.CommandPayload{Discovery: scan.Discovery, MinerIds: []string{"m-1"}}, true, nil, pb.ResultCode_RESULT_CODE_FAILED, true, nil},
		{"scan without id", &pb.CommandPayload{Discovery: &pb.DiscoveryRequest{}}, true, nil, pb.ResultCode_RESULT_CODE_FAILED, true, nil},
		{"pairing without devices", &pb.CommandPayload{Pairing: &pb.PairingRequest{PairingId: "p"}}, true, nil, pb.ResultCode_RESULT_CODE_FAILED, true, nil},
		{"pairing naming a device twice", &pb.CommandPayload{Pairing: &pb.PairingRequest{Devices: []*pb.Device{{MinerId: "a"}, {MinerId: "a"}}}}, true, nil, pb.ResultCode_RESULT_CODE_FAILED, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := decide(input{nodeID: "n1", cmd: cmd, payload: tc.payload, mark: 5, verifyErr: tc.verifyErr,
				controlSupported: tc.supported, owned: func(string) bool { return false }})
			if v.code != tc.code || v.consume != tc.consume || v.dispatch != (tc.code == pb.ResultCode_RESULT_CODE_RUNNING) {
				t.Fatalf("verdict %+v; want code %s consume %v", v, tc.code, tc.consume)
			}
			if tc.ids != nil && !slices.Equal(v.miners, tc.ids) {
				t.Fatalf("result ids %v, want %v", v.miners, tc.ids)
			}
			if v.code != pb.ResultCode_RESULT_CODE_RUNNING && v.msg == "" {
				t.Fatal("a refusal without a message")
			}
		})
	}
}

func TestOwnership(t *testing.T) {
	var none *Ownership
	if none.Has("a") || none.Len() != 0 {
		t.Fatal("a nil Ownership owns something")
	}
	o := NewOwnership([]string{"a", "b"})
	if !o.Has("a") || o.Has("c") || o.Len() != 2 {
		t.Fatal("ownership set")
	}
	o.Replace([]string{"c"})
	if o.Has("a") || !o.Has("c") {
		t.Fatal("replace")
	}
}
