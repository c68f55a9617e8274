package signing

import (
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// TestRotationSignsItsAnnouncementAfterRevocation: the commands carrying an announcement are signed after
// Rotate returned; a revocation or the end of the overlap coming first must not stop them, and a node that
// trusts the old key takes the announcement and then the revocation signed by the new key.
func TestRotationSignsItsAnnouncementAfterRevocation(t *testing.T) {
	o, err := NewOrgKeys("org-a", t0)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring("org-a", o.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	old, _ := o.ActiveKeyID(t0)
	rotAt := t0.Add(time.Minute)
	rot, err := o.Rotate(rotAt, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := o.Revoke(old, rotAt)
	if err != nil {
		t.Fatal(err)
	}
	later := rotAt.Add(time.Hour) // past the overlap too
	if err := o.SignWith(old, &pb.ControlCommand{Payload: rot.Payload}, later); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("SignWith the revoked key: %v, want ErrRevokedKey", err)
	}

	ann := &pb.ControlCommand{Actor: "system:key-rotation", NodeId: "n1", MonotonicSeq: 1, Payload: rot.Payload}
	if err := rot.Sign(ann); err != nil {
		t.Fatalf("Rotation.Sign after the revocation: %v", err)
	}
	if ann.GetKeyId() != old {
		t.Fatalf("announcement signed by %q, want %q", ann.GetKeyId(), old)
	}
	revCmd := &pb.ControlCommand{Actor: "system:key-revocation", NodeId: "n1", MonotonicSeq: 2, Payload: rev.Payload}
	if err := o.Sign(revCmd, later); err != nil {
		t.Fatal(err)
	}
	if err := ring.ApplyAnnouncement(ann, nil, later); err != nil {
		t.Fatalf("node refused the announcement: %v", err)
	}
	if err := ring.ApplyRevocation(revCmd, nil, later); err != nil {
		t.Fatalf("node refused the revocation: %v", err)
	}
	if err := ring.Verify(ann, later); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("old key after the revocation: %v, want ErrRevokedKey", err)
	}

	// Only this rotation's announcement: anything else is refused, so the held key signs nothing else.
	other := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 3, Payload: rev.Payload}
	if err := rot.Sign(other); !errors.Is(err, ErrPayloadMismatch) {
		t.Fatalf("Rotation.Sign of another payload: %v, want ErrPayloadMismatch", err)
	}
	if len(other.GetSignature()) != 0 || other.GetKeyId() != "" {
		t.Fatal("a refused command was signed")
	}
	if err := rot.Sign(nil); !errors.Is(err, ErrMalformedCommand) {
		t.Fatalf("Rotation.Sign(nil): %v", err)
	}
	if err := (&Rotation{Payload: rot.Payload}).Sign(&pb.ControlCommand{Payload: rot.Payload}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a Rotation without its key: %v, want ErrUnknownKey", err)
	}
}
