package gate

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestDecide(t *testing.T) {
	owned := func(id string) bool { return id == "m-1" || id == "m-2" }
	cmd := func(node string, seq uint64, sig string) *pb.ControlCommand {
		return &pb.ControlCommand{CommandId: fmt.Sprintf("c%d", seq), NodeId: node, MonotonicSeq: seq, Signature: []byte(sig)}
	}
	payload := func(ids ...string) *pb.CommandPayload {
		return &pb.CommandPayload{MinerIds: ids, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}}
	}
	executed := &pb.AuditRecord{CommandId: "c5", MonotonicSeq: 5, Signature: []byte("s5")}
	tests := []struct {
		name     string
		in       input
		code     pb.ResultCode
		consume  bool
		dispatch bool
	}{
		{"accepted", input{cmd: cmd("n1", 6, "s6"), payload: payload("m-1", "m-2"), mark: 5}, pb.ResultCode_RESULT_CODE_RUNNING, true, true},
		{"gap in seqs is accepted", input{cmd: cmd("n1", 9, "s9"), payload: payload("m-1"), mark: 5}, pb.ResultCode_RESULT_CODE_RUNNING, true, true},
		{"first command ever", input{cmd: cmd("n1", 1, "s1"), payload: payload("m-1")}, pb.ResultCode_RESULT_CODE_RUNNING, true, true},
		{"wrong node", input{cmd: cmd("n2", 6, "s6"), payload: payload("m-1"), mark: 5}, pb.ResultCode_RESULT_CODE_REFUSED_NODE, false, false},
		{"bad signature", input{cmd: cmd("n1", 6, "xx"), payload: payload("m-1"), mark: 5, verifyErr: ErrBadSignature}, pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE, false, false},
		{"revoked key", input{cmd: cmd("n1", 6, "s6"), payload: payload("m-1"), mark: 5, verifyErr: fmt.Errorf("key k1: %w", ErrUnknownKey)}, pb.ResultCode_RESULT_CODE_REFUSED_KEY, false, false},
		{"wrong epoch", input{cmd: cmd("n1", 6, "s6"), payload: payload("m-1"), mark: 5, epochErr: ErrWrongEpoch}, pb.ResultCode_RESULT_CODE_REFUSED_EPOCH, false, false},
		{"seq 0", input{cmd: cmd("n1", 0, "s0"), payload: payload("m-1")}, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, false, false},
		{"replay of the executed seq", input{cmd: cmd("n1", 5, "s5"), payload: payload("m-1"), mark: 5, executed: executed}, pb.ResultCode_RESULT_CODE_DUPLICATE, false, false},
		{"same seq, other signature", input{cmd: cmd("n1", 5, "forged"), payload: payload("m-1"), mark: 5, executed: executed}, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, false, false},
		{"same seq, other command id", input{cmd: &pb.ControlCommand{CommandId: "other", NodeId: "n1", MonotonicSeq: 5, Signature: []byte("s5")}, payload: payload("m-1"), mark: 5, executed: executed}, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, false, false},
		{"old seq never executed (out of order)", input{cmd: cmd("n1", 3, "s3"), payload: payload("m-1"), mark: 5}, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, false, false},
		{"not owned", input{cmd: cmd("n1", 6, "s6"), payload: payload("m-1", "m-9"), mark: 5}, pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP, true, false},
		{"unreadable payload", input{cmd: cmd("n1", 6, "s6"), payload: &pb.CommandPayload{}, payloadErr: errors.New("proto: cannot parse"), mark: 5}, pb.ResultCode_RESULT_CODE_FAILED, true, false},
		{"no action", input{cmd: cmd("n1", 6, "s6"), payload: &pb.CommandPayload{MinerIds: []string{"m-1"}}, mark: 5}, pb.ResultCode_RESULT_CODE_FAILED, true, false},
		{"no miners", input{cmd: cmd("n1", 6, "s6"), payload: payload(), mark: 5}, pb.ResultCode_RESULT_CODE_FAILED, true, false},
		{"key management", input{cmd: cmd("n1", 6, "s6"), payload: &pb.CommandPayload{KeyRevocation: &pb.KeyRevocation{KeyId: "k"}}, mark: 5}, pb.ResultCode_RESULT_CODE_UNSUPPORTED, true, false},
		{"wrong node beats everything", input{cmd: cmd("n2", 3, "xx"), payload: payload("m-9"), mark: 5, verifyErr: ErrBadSignature}, pb.ResultCode_RESULT_CODE_REFUSED_NODE, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.nodeID, tc.in.owned = "n1", owned
			v := decide(tc.in)
			if v.code != tc.code || v.consume != tc.consume || v.dispatch != tc.dispatch {
				t.Fatalf("verdict %+v; want code %s consume %v dispatch %v", v, tc.code, tc.consume, tc.dispatch)
			}
			if v.code != pb.ResultCode_RESULT_CODE_RUNNING && v.msg == "" {
				t.Fatal("a refusal without a message")
			}
		})
	}
}

func TestDecideOwnershipMessageAndDedupe(t *testing.T) {
	in := input{nodeID: "n1", cmd: &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1},
		payload: &pb.CommandPayload{MinerIds: []string{"a", "b", "a", "c", "d", "e", "f", "g"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_BLINK}},
		owned:   func(string) bool { return false }}
	v := decide(in)
	if v.msg != "not owned by this node: a, b, c, d, e and 2 more" {
		t.Fatalf("message %q", v.msg)
	}
	in.owned = func(string) bool { return true }
	if v := decide(in); len(v.miners) != 7 {
		t.Fatalf("miners %v, want duplicates removed", v.miners)
	}
}
