package server

import (
	"errors"
	"slices"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
)

// nextTransfer reads c's frames until the ACTION_TRANSFER command id arrives (other frames are skipped).
func nextTransfer(t *testing.T, c *control, id string) *pb.ControlCommand {
	t.Helper()
	for {
		f := c.next()
		if cmd := f.GetCommand(); cmd != nil && cmd.GetCommandId() == id {
			if payloadOf(t, cmd).GetSpec().GetAction() != pb.Action_ACTION_TRANSFER {
				t.Fatalf("command %s is not a transfer", id)
			}
			return cmd
		}
	}
}

// TestTransferRefusesBadReseal: a transfer completes only with exactly the envelopes the vault asked the
// outgoing node for. A node that reports SUCCEEDED with a malformed list, with envelopes sealed to another
// node, or with none, gets a FAILED result and nothing moves (the old owner keeps its envelope and the
// device); the same request resumes the transfer, and a correct re-seal completes it: the device and its
// credential belong to the new node, the old one's envelope is gone. A paired device is refused.
func TestTransferRefusesBadReseal(t *testing.T) {
	h := newPairHarness(t)
	h.declare(`{"site":"s1","members":["na","nb"],"standby":"nb","devices":["m1"]}`)
	h.issue(`{"miner_ids":["m2"],"action":"update_pools","pools":[{"url":"stratum+tcp://pool.example:3333","user":"w","password":"s3cret","priority":0}]}`)
	c, _ := h.openControl("na", 0)
	purpose := sealing.PoolPassword(0)

	if code, b := h.do("POST", "/api/v1/devices/m1/transfer", `{"to":"nc"}`, nil); code != 409 {
		t.Fatalf("transfer of a paired device: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/devices/m2/transfer", `{"to":"nr"}`, nil); code != 409 {
		t.Fatalf("transfer to a revoked node: %d %s", code, b)
	}
	if code, b := h.do("POST", "/api/v1/devices/m2/transfer", `{"to":"np"}`, nil); code != 409 {
		t.Fatalf("transfer to an unconfirmed node: %d %s", code, b)
	}

	start := func() *pb.ControlCommand {
		t.Helper()
		var out struct {
			CommandID string `json:"command_id"`
			Reseal    int    `json:"reseal"`
		}
		if code, b := h.do("POST", "/api/v1/devices/m2/transfer", `{"to":"nb"}`, &out); code != 202 || out.Reseal != 1 {
			t.Fatalf("transfer: %d %s", code, b)
		}
		return nextTransfer(t, c, out.CommandID)
	}
	report := func(cmd *pb.ControlCommand, msg string) {
		c.send(&pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: &pb.CommandResultReport{CommandId: cmd.GetCommandId(),
			MonotonicSeq: cmd.GetMonotonicSeq(), Done: true,
			Results: []*pb.MinerResult{{MinerId: "m2", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED, Message: msg}}}}})
	}
	reseal := func(cmd *pb.ControlCommand, to string) *sealing.Envelope {
		t.Helper()
		spec := payloadOf(t, cmd).GetSpec()
		if len(spec.GetSealed()) != 1 || spec.GetParams()[sealing.ParamTransferTo] != "nb" {
			t.Fatalf("transfer spec %v", spec)
		}
		src, err := sealing.Parse(spec.GetSealed()[0].GetEnvelope())
		if err != nil {
			t.Fatal(err)
		}
		pt, err := sealing.Open(h.keys["na"], src, "na", "m2", purpose)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := sealing.ParsePublicKey(h.keys[to].PublicKey().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		env, err := sealing.Seal(pub, to, "m2", purpose, pt)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	unmoved := func(what string) {
		t.Helper()
		st, err := h.srv.vault.Status("m2")
		if err != nil || st.Transfer == nil || !slices.Equal(st.Owners, []string{"na"}) {
			t.Fatalf("%s: vault %+v, %v", what, st, err)
		}
		if _, err := h.srv.vault.Envelope("na", "m2", purpose); err != nil {
			t.Fatalf("%s: na's envelope: %v", what, err)
		}
		for _, m := range h.miners("").Items {
			if m.ID == "m2" && m.Node != "na" {
				t.Fatalf("%s: m2 moved to %s", what, m.Node)
			}
		}
	}

	cmd := start()
	report(cmd, "done"+sealing.TransferSealedMarker+"%%%")
	h.waitCommand(cmd.GetCommandId(), "failed")
	unmoved("malformed list")

	cmd = start() // resumes the pending transfer
	wrong, _ := sealing.FormatResealed("done", []*sealing.Envelope{reseal(cmd, "nc")})
	report(cmd, wrong)
	h.waitCommand(cmd.GetCommandId(), "failed")
	unmoved("sealed to another node")

	cmd = start()
	report(cmd, "done")
	h.waitCommand(cmd.GetCommandId(), "failed")
	unmoved("no envelopes")

	cmd = start()
	good, _ := sealing.FormatResealed("re-sealed 1", []*sealing.Envelope{reseal(cmd, "nb")})
	report(cmd, good)
	v := h.waitCommand(cmd.GetCommandId(), "succeeded")
	if len(v.Results) != 1 || v.Results[0].Message != "re-sealed 1" {
		t.Fatalf("recorded result %+v", v.Results)
	}
	waitFor(t, func() bool {
		for _, m := range h.miners("").Items {
			if m.ID == "m2" {
				return m.Node == "nb"
			}
		}
		return false
	}, "m2 owned by nb")
	st, err := h.srv.vault.Status("m2")
	if err != nil || st.Transfer != nil || !slices.Equal(st.Owners, []string{"nb"}) {
		t.Fatalf("vault after: %+v, %v", st, err)
	}
	if _, err := h.srv.vault.Envelope("na", "m2", purpose); !errors.Is(err, credentials.ErrNotOwner) {
		t.Fatalf("na's envelope after: %v", err)
	}
	// na's ownership map no longer lists m2.
	waitFor(t, func() bool {
		select {
		case f := <-c.frames:
			if a := f.GetHelloAck(); a != nil {
				return !slices.ContainsFunc(a.GetDevices(), func(d *pb.Device) bool { return d.GetMinerId() == "m2" })
			}
		default:
		}
		return false
	}, "na's new ownership map without m2")
}
