package signing

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// The local watermark is covered when set, and a command without one encodes exactly as before it existed.
func TestCanonicalBytesCoverTheLocalWatermark(t *testing.T) {
	base := &pb.ControlCommand{Actor: "user:alice", NodeId: "node-1", MonotonicSeq: 7, KeyId: "org/k_1",
		IdempotencyKey: "i", Payload: []byte{1, 2, 3}}
	legacy := CanonicalBytes(base)
	withWM := clone(base)
	withWM.LocalWatermark = &pb.HLC{WallMs: 1000, Logical: 2, NodeId: "node-1"}
	ref := CanonicalBytes(withWM)
	if bytes.Equal(ref, legacy) {
		t.Fatal("a watermark does not change the canonical bytes")
	}
	if !bytes.HasPrefix(ref, legacy) {
		t.Fatal("a watermark must only append to the legacy encoding")
	}
	zero := clone(base)
	zero.LocalWatermark = &pb.HLC{}
	if bytes.Equal(CanonicalBytes(zero), legacy) {
		t.Fatal("a zero watermark must still be distinguishable from none")
	}
	for name, mut := range map[string]func(*pb.HLC){
		"wall_ms": func(h *pb.HLC) { h.WallMs++ },
		"logical": func(h *pb.HLC) { h.Logical++ },
		"node_id": func(h *pb.HLC) { h.NodeId = "node-2" },
	} {
		c := clone(withWM)
		mut(c.LocalWatermark)
		if bytes.Equal(CanonicalBytes(c), ref) {
			t.Errorf("changing watermark %s does not change the canonical bytes", name)
		}
	}

	// A signed watermark cannot be lowered (to slip a command past a newer local action) or stripped.
	pub, priv, _ := ed25519.GenerateKey(nil)
	if err := Sign(priv, withWM); err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, withWM); err != nil {
		t.Fatalf("verify: %v", err)
	}
	lowered := clone(withWM)
	lowered.LocalWatermark.WallMs = 5000
	if err := Verify(pub, lowered); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("changed watermark verified: %v", err)
	}
	stripped := clone(withWM)
	stripped.LocalWatermark = nil
	if err := Verify(pub, stripped); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("stripped watermark verified: %v", err)
	}
}
