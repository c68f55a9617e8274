package signing

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness is one org's issuer and one node's keyring, seeded from the issuer's public keys as at enrollment.
type harness struct {
	t      *testing.T
	issuer *OrgKeys
	ring   *Keyring
	seq    uint64
}

func newHarness(t *testing.T, org string, opts ...KeyringOption) *harness {
	t.Helper()
	issuer, err := NewOrgKeys(org, t0)
	if err != nil {
		t.Fatalf("NewOrgKeys: %v", err)
	}
	ring, err := NewKeyring(org, issuer.PublicKeys(), opts...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return &harness{t: t, issuer: issuer, ring: ring}
}

// command returns an unsigned command for node-1 with the next seq carrying payload.
func (h *harness) command(payload []byte) *pb.ControlCommand {
	h.seq++
	return &pb.ControlCommand{
		CommandId:      "cmd-1",
		Actor:          "user:alice",
		NodeId:         "node-1",
		MonotonicSeq:   h.seq,
		LeaseEpoch:     3,
		IdempotencyKey: "idem-1",
		Payload:        payload,
	}
}

func minerPayload(t *testing.T) []byte {
	t.Helper()
	b, err := proto.Marshal(&pb.CommandPayload{MinerIds: []string{"m-1", "m-2"}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed returns a miner command signed by the issuer's active key at now.
func (h *harness) signed(now time.Time) *pb.ControlCommand {
	h.t.Helper()
	cmd := h.command(minerPayload(h.t))
	if err := h.issuer.Sign(cmd, now); err != nil {
		h.t.Fatalf("Sign: %v", err)
	}
	return cmd
}

// rotate rotates the issuer at now and applies the announcement to the keyring at deliverAt.
func (h *harness) rotate(now time.Time, overlap time.Duration, deliverAt time.Time) *Rotation {
	h.t.Helper()
	rot, err := h.issuer.Rotate(now, overlap)
	if err != nil {
		h.t.Fatalf("Rotate: %v", err)
	}
	cmd := h.command(rot.Payload)
	if err := h.issuer.SignWith(rot.SignerKeyID, cmd, now); err != nil {
		h.t.Fatalf("SignWith: %v", err)
	}
	if err := h.ring.ApplyAnnouncement(cmd, rot.Announcement, deliverAt); err != nil {
		h.t.Fatalf("ApplyAnnouncement: %v", err)
	}
	return rot
}

// revoke revokes keyID at the issuer and applies it to the keyring.
func (h *harness) revoke(keyID string, now time.Time) {
	h.t.Helper()
	rev, err := h.issuer.Revoke(keyID, now)
	if err != nil {
		h.t.Fatalf("Revoke: %v", err)
	}
	cmd := h.command(rev.Payload)
	if err := h.issuer.Sign(cmd, now); err != nil {
		h.t.Fatalf("Sign revocation: %v", err)
	}
	if err := h.ring.ApplyRevocation(cmd, nil, now); err != nil {
		h.t.Fatalf("ApplyRevocation: %v", err)
	}
}

func clone(c *pb.ControlCommand) *pb.ControlCommand { return proto.Clone(c).(*pb.ControlCommand) }
