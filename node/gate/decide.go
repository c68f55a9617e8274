package gate

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/protobuf/proto"
)

// input is everything the gate's decision depends on, gathered by the actor.
type input struct {
	nodeID     string
	cmd        *pb.ControlCommand
	payload    *pb.CommandPayload
	payloadErr error
	verifyErr  error
	epochErr   error
	mark       uint64
	// executed is the command recorded at cmd's seq when that seq is at or below the mark.
	executed *pb.AuditRecord
	owned    func(minerID string) bool
	// keysSupported: the verifier applies key announcements and revocations (KeyApplier).
	keysSupported bool
	// controlSupported: the node runs this node-control command (Env.Control for discovery scans and
	// pairings, Env.SiteControl for site policies and curtailment).
	controlSupported bool
	// pools, when set, checks a pool change against the site policy's trusted pools (Env.PoolGuard).
	pools PoolGuard
}

// verdict is the gate's decision on one command.
type verdict struct {
	code pb.ResultCode
	msg  string
	// consume: the command is authentic and its seq fresh, so the mark moves to it and the outcome is
	// recorded under it (whatever the code).
	consume bool
	// dispatch: run it on the miners (code RUNNING).
	dispatch bool
	// keys: a key announcement or revocation to apply to the trust store (the actor decides the final code).
	keys bool
	// miners is the de-duplicated list of miners named.
	miners []string
}

// decide is the gate's pure decision. Checks run from the cheapest proof of a forged or misrouted command to
// the business checks; only the authenticity checks (node, signature, epoch, seq) can refuse without
// consuming the seq.
func decide(in input) verdict {
	cmd := in.cmd
	seq := cmd.GetMonotonicSeq()
	switch {
	case cmd.GetNodeId() != in.nodeID:
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_NODE, msg: fmt.Sprintf("addressed to node %q, this is %q", cmd.GetNodeId(), in.nodeID)}
	case in.verifyErr != nil && errors.Is(in.verifyErr, ErrUnknownKey):
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_KEY, msg: in.verifyErr.Error()}
	case in.verifyErr != nil:
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_SIGNATURE, msg: in.verifyErr.Error()}
	case in.epochErr != nil && errors.Is(in.epochErr, ErrFenced):
		return verdict{code: pb.ResultCode_RESULT_CODE_FENCED, msg: in.epochErr.Error()}
	case in.epochErr != nil:
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_EPOCH, msg: in.epochErr.Error()}
	case seq == 0:
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_SEQ, msg: "seq 0: seqs start at 1"}
	case seq <= in.mark:
		if ex := in.executed; ex != nil && ex.GetCommandId() == cmd.GetCommandId() && bytes.Equal(ex.GetSignature(), cmd.GetSignature()) {
			return verdict{code: pb.ResultCode_RESULT_CODE_DUPLICATE, msg: fmt.Sprintf("seq %d already executed", seq)}
		}
		return verdict{code: pb.ResultCode_RESULT_CODE_REFUSED_SEQ, msg: fmt.Sprintf("seq %d is at or below the high-water mark %d", seq, in.mark)}
	}
	v := verdict{consume: true}
	p := in.payload
	switch {
	case in.payloadErr != nil:
		v.code, v.msg = pb.ResultCode_RESULT_CODE_FAILED, "unreadable payload: "+in.payloadErr.Error()
		return v
	case p.GetKeyAnnouncement() != nil || p.GetKeyRevocation() != nil:
		if !in.keysSupported {
			v.code, v.msg = pb.ResultCode_RESULT_CODE_UNSUPPORTED, "key management commands need a keyring verifier; this node has none"
			return v
		}
		v.keys = true
		v.code, v.msg = pb.ResultCode_RESULT_CODE_SUCCEEDED, "key command"
		return v
	case isControl(p):
		return decideControl(v, p, in.controlSupported)
	case p.GetSpec() == nil || p.GetSpec().GetAction() == pb.Action_ACTION_UNSPECIFIED:
		v.code, v.msg = pb.ResultCode_RESULT_CODE_FAILED, "payload has no action"
		return v
	}
	v.miners = dedupe(p.GetMinerIds())
	if len(v.miners) == 0 {
		v.code, v.msg = pb.ResultCode_RESULT_CODE_FAILED, "payload names no miner"
		return v
	}
	var foreign []string
	for _, id := range v.miners {
		if !in.owned(id) {
			foreign = append(foreign, id)
		}
	}
	if len(foreign) > 0 {
		shown := foreign[:min(len(foreign), 5)]
		more := ""
		if len(foreign) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(foreign)-len(shown))
		}
		v.code = pb.ResultCode_RESULT_CODE_REFUSED_OWNERSHIP
		v.msg = fmt.Sprintf("not owned by this node: %s%s", strings.Join(shown, ", "), more)
		return v
	}
	if ok, why := poolsAllowed(in.pools, p.GetSpec()); !ok {
		v.code, v.msg = pb.ResultCode_RESULT_CODE_REFUSED_POLICY, why
		return v
	}
	v.code, v.dispatch = pb.ResultCode_RESULT_CODE_RUNNING, true
	return v
}

func dedupe(ids []string) []string {
	out := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; ok || id == "" {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return slices.Clip(out)
}

// payloadOf decodes a command's payload.
func payloadOf(cmd *pb.ControlCommand) (*pb.CommandPayload, error) {
	p := &pb.CommandPayload{}
	if err := proto.Unmarshal(cmd.GetPayload(), p); err != nil {
		return nil, fmt.Errorf("decode payload of command seq %d: %w", cmd.GetMonotonicSeq(), err)
	}
	return p, nil
}
