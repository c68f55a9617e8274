package grains

import (
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
)

func TestOrgKeysSigner(t *testing.T) {
	keys, err := signing.NewOrgKeys("default", t0)
	if err != nil {
		t.Fatal(err)
	}
	s := OrgKeysSigner{Org: keys, Clock: clock.NewFake(t0.Add(time.Minute))}
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1, Payload: []byte("p")}
	if err := s.Sign(cmd); err != nil {
		t.Fatal(err)
	}
	pub := s.Keys()
	if len(pub) != 1 || cmd.GetKeyId() != pub[0].GetKeyId() {
		t.Fatalf("key id %q, keys %v", cmd.GetKeyId(), pub)
	}
	if err := signing.Verify(pub[0].GetPublicKey(), cmd); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
}
