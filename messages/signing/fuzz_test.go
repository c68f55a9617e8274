package signing

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// FuzzKeyringVerify feeds arbitrary commands to Verify, ApplyAnnouncement and ApplyRevocation: they must
// never panic, and a command the keyring did not sign for must never be accepted.
func FuzzKeyringVerify(f *testing.F) {
	issuer, err := NewOrgKeys("org-a", t0)
	if err != nil {
		f.Fatal(err)
	}
	keyID, _ := issuer.ActiveKeyID(t0)
	seed := &pb.ControlCommand{Actor: "user:a", NodeId: "node-1", MonotonicSeq: 1, LeaseEpoch: 1, IdempotencyKey: "i", Payload: []byte{0x0a, 0x01, 'm'}}
	if err := issuer.Sign(seed, t0); err != nil {
		f.Fatal(err)
	}
	rot, _ := issuer.Rotate(t0, time.Hour)
	f.Add(seed.Actor, seed.NodeId, seed.MonotonicSeq, seed.KeyId, seed.Signature, seed.LeaseEpoch, seed.IdempotencyKey, seed.Payload, int64(0))
	f.Add("", "", uint64(0), "", []byte(nil), uint64(0), "", []byte(nil), int64(-1))
	f.Add("x", "n", uint64(1<<63), "org-b/k_1", make([]byte, 64), uint64(7), "", rot.Payload, int64(1<<40))
	f.Add("x", "n", uint64(2), keyID, make([]byte, 63), uint64(7), "", []byte{0xff, 0xff, 0xff}, int64(3600_000))

	f.Fuzz(func(t *testing.T, actor, nodeID string, seq uint64, kid string, sig []byte, epoch uint64, idem string, payload []byte, offMs int64) {
		ring, err := NewKeyring("org-a", issuer.PublicKeys())
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Duration(offMs) * time.Millisecond)
		cmd := &pb.ControlCommand{Actor: actor, NodeId: nodeID, MonotonicSeq: seq, KeyId: kid, Signature: sig,
			LeaseEpoch: epoch, IdempotencyKey: idem, Payload: payload}
		_ = CanonicalBytes(cmd)
		err = ring.Verify(cmd, now)
		if err == nil && !isSeed(cmd, seed) {
			t.Fatalf("accepted a command the issuer never signed: %v", cmd)
		}
		_ = ring.ApplyAnnouncement(cmd, nil, now)
		_ = ring.ApplyRevocation(cmd, nil, now)
		_ = ring.Snapshot()
	})
}

func isSeed(c, seed *pb.ControlCommand) bool {
	return c.GetActor() == seed.GetActor() && c.GetNodeId() == seed.GetNodeId() && c.GetMonotonicSeq() == seed.GetMonotonicSeq() &&
		c.GetKeyId() == seed.GetKeyId() && c.GetLeaseEpoch() == seed.GetLeaseEpoch() &&
		c.GetIdempotencyKey() == seed.GetIdempotencyKey() && string(c.GetPayload()) == string(seed.GetPayload())
}
