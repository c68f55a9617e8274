package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestCanonicalBytesCoversExactlyTheSignedFields(t *testing.T) {
	base := &pb.ControlCommand{
		CommandId: "c", Actor: "user:alice", NodeId: "node-1", MonotonicSeq: 7, KeyId: "org/k_1",
		Signature: []byte("sig"), LeaseEpoch: 2, IdempotencyKey: "i", Payload: []byte{1, 2, 3}, IssuedAtUnixMs: 5,
	}
	ref := CanonicalBytes(base)
	covered := map[string]func(c *pb.ControlCommand){
		"actor":           func(c *pb.ControlCommand) { c.Actor = "user:mallory" },
		"node_id":         func(c *pb.ControlCommand) { c.NodeId = "node-2" },
		"monotonic_seq":   func(c *pb.ControlCommand) { c.MonotonicSeq = 8 },
		"key_id":          func(c *pb.ControlCommand) { c.KeyId = "org/k_2" },
		"lease_epoch":     func(c *pb.ControlCommand) { c.LeaseEpoch = 3 },
		"idempotency_key": func(c *pb.ControlCommand) { c.IdempotencyKey = "j" },
		"payload":         func(c *pb.ControlCommand) { c.Payload = []byte{1, 2, 4} },
	}
	for name, mut := range covered {
		c := clone(base)
		mut(c)
		if bytes.Equal(CanonicalBytes(c), ref) {
			t.Errorf("changing %s does not change the canonical bytes", name)
		}
	}
	notCovered := map[string]func(c *pb.ControlCommand){
		"command_id": func(c *pb.ControlCommand) { c.CommandId = "other" },
		"signature":  func(c *pb.ControlCommand) { c.Signature = nil },
		"issued_at":  func(c *pb.ControlCommand) { c.IssuedAtUnixMs = 6 },
	}
	for name, mut := range notCovered {
		c := clone(base)
		mut(c)
		if !bytes.Equal(CanonicalBytes(c), ref) {
			t.Errorf("changing %s changes the canonical bytes", name)
		}
	}
	if !bytes.HasPrefix(ref[8:], []byte(CommandContext)) {
		t.Errorf("canonical bytes do not start with the command context")
	}
}

func TestCanonicalBytesUnambiguousBoundaries(t *testing.T) {
	pairs := [][2]*pb.ControlCommand{
		{{Actor: "ab", NodeId: "c"}, {Actor: "a", NodeId: "bc"}},
		{{NodeId: "n", KeyId: ""}, {NodeId: "", KeyId: "n"}},
		{{IdempotencyKey: "x", Payload: nil}, {IdempotencyKey: "", Payload: []byte("x")}},
		{{MonotonicSeq: 1, LeaseEpoch: 0}, {MonotonicSeq: 0, LeaseEpoch: 1}},
	}
	for i, p := range pairs {
		if bytes.Equal(CanonicalBytes(p[0]), CanonicalBytes(p[1])) {
			t.Errorf("pair %d: different commands encode to the same bytes", i)
		}
	}
	if !bytes.Equal(CanonicalBytes(nil), CanonicalBytes(&pb.ControlCommand{})) {
		t.Errorf("nil command should encode as the zero command")
	}
}

func TestChallengeBytesDistinctFromCommands(t *testing.T) {
	a := ChallengeBytes("node-1", []byte("nonce"))
	if bytes.Equal(a, ChallengeBytes("node-1n", []byte("once"))) {
		t.Fatal("challenge bytes ambiguous at the node id / nonce boundary")
	}
	if bytes.Equal(a, ChallengeBytes("node-2", []byte("nonce"))) {
		t.Fatal("challenge bytes do not bind the node id")
	}
	if !bytes.Contains(a, []byte(SessionContext)) || bytes.Contains(a, []byte(CommandContext)) {
		t.Fatal("challenge bytes carry the wrong context")
	}
	if bytes.Equal(a[:8+len(SessionContext)], CanonicalBytes(nil)[:8+len(CommandContext)]) {
		t.Fatal("session and command contexts collide")
	}
}

func TestFingerprint(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)).Public().(ed25519.PublicKey)
	fp := Fingerprint(pub)
	if !regexp.MustCompile(`^SHA256:[0-9a-f]{4}(-[0-9a-f]{4}){7}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q not of the form SHA256:xxxx-…(8 groups)", fp)
	}
	sum := sha256.Sum256(pub)
	want := "SHA256:"
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			want += "-"
		}
		want += string("0123456789abcdef"[sum[i]>>4]) + string("0123456789abcdef"[sum[i]&15]) +
			string("0123456789abcdef"[sum[i+1]>>4]) + string("0123456789abcdef"[sum[i+1]&15])
	}
	if fp != want {
		t.Fatalf("fingerprint %q, want %q", fp, want)
	}
	if Fingerprint(pub) != fp {
		t.Fatal("fingerprint not stable")
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	if Fingerprint(other) == fp {
		t.Fatal("different keys share a fingerprint")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	cmd := &pb.ControlCommand{NodeId: "n", MonotonicSeq: 1, KeyId: "o/k_1", Payload: []byte("p")}
	if err := Sign(priv, cmd); err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, cmd); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Sign(priv[:10], cmd); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("Sign with short key: %v", err)
	}
	if err := Sign(priv, nil); !errors.Is(err, ErrMalformedCommand) {
		t.Fatalf("Sign nil: %v", err)
	}
	if err := Verify(pub[:5], cmd); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("Verify with short key: %v", err)
	}
}

func TestKeyringVerifyRefusals(t *testing.T) {
	h := newHarness(t, "org-a")
	good := h.signed(t0)
	firstKey := good.GetKeyId()

	// A second, revoked key for the "revoked key" case, and a signed command from it made before revocation.
	h.rotate(t0, time.Hour, t0)
	revokedCmd := h.signed(t0)
	h.revoke(revokedCmd.GetKeyId(), t0)

	// Another org's issuer, and an attacker who made their own key and claims org-a's namespace.
	other := newHarness(t, "org-b")
	otherCmd := other.signed(t0)
	attacker, _ := NewOrgKeys("org-a", t0)
	unknownCmd := h.command(minerPayload(t))
	if err := attacker.Sign(unknownCmd, t0); err != nil {
		t.Fatal(err)
	}

	tamper := func(f func(c *pb.ControlCommand)) *pb.ControlCommand { c := clone(good); f(c); return c }

	cases := []struct {
		name string
		cmd  *pb.ControlCommand
		now  time.Time
		want error
	}{
		{"valid", good, t0, nil},
		{"valid during overlap", good, t0.Add(59 * time.Minute), nil},
		{"tampered payload", tamper(func(c *pb.ControlCommand) { c.Payload = append(c.Payload, 0) }), t0, ErrBadSignature},
		{"tampered seq", tamper(func(c *pb.ControlCommand) { c.MonotonicSeq++ }), t0, ErrBadSignature},
		{"tampered node id", tamper(func(c *pb.ControlCommand) { c.NodeId = "node-2" }), t0, ErrBadSignature},
		{"tampered epoch", tamper(func(c *pb.ControlCommand) { c.LeaseEpoch++ }), t0, ErrBadSignature},
		{"tampered actor", tamper(func(c *pb.ControlCommand) { c.Actor = "user:mallory" }), t0, ErrBadSignature},
		{"tampered idempotency key", tamper(func(c *pb.ControlCommand) { c.IdempotencyKey = "idem-2" }), t0, ErrBadSignature},
		{"bad signature", tamper(func(c *pb.ControlCommand) { c.Signature[0] ^= 1 }), t0, ErrBadSignature},
		{"truncated signature", tamper(func(c *pb.ControlCommand) { c.Signature = c.Signature[:63] }), t0, ErrBadSignature},
		{"no signature", tamper(func(c *pb.ControlCommand) { c.Signature = nil }), t0, ErrBadSignature},
		{"unknown key", unknownCmd, t0, ErrUnknownKey},
		{"no key id", tamper(func(c *pb.ControlCommand) { c.KeyId = "" }), t0, ErrUnknownKey},
		{"key id not namespaced", tamper(func(c *pb.ControlCommand) { c.KeyId = "k_0011223344556677" }), t0, ErrUnknownKey},
		{"revoked key", revokedCmd, t0, ErrRevokedKey},
		{"key of another org", otherCmd, t0, ErrWrongOrg},
		{"retired after overlap", good, t0.Add(time.Hour), ErrKeyRetired},
		{"nil command", nil, t0, ErrMalformedCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := h.ring.Verify(tc.cmd, tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if firstKey == revokedCmd.GetKeyId() {
		t.Fatal("harness: rotation did not make a new key")
	}
}

func TestKeyringNotYetValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []KeyringOption
		start time.Duration // validity start relative to now
		want  error
	}{
		{"a day ahead", nil, 24 * time.Hour, ErrKeyNotYetValid},
		{"within default skew", nil, 30 * time.Second, nil},
		{"beyond default skew", nil, 2 * time.Minute, ErrKeyNotYetValid},
		{"no skew tolerance", []KeyringOption{WithClockSkew(0)}, time.Second, ErrKeyNotYetValid},
		{"already valid", []KeyringOption{WithClockSkew(0)}, -time.Second, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issuer, _ := NewOrgKeys("org-a", t0.Add(tc.start))
			ring, err := NewKeyring("org-a", issuer.PublicKeys(), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			cmd := &pb.ControlCommand{NodeId: "node-1", MonotonicSeq: 1}
			if err := issuer.Sign(cmd, t0.Add(tc.start)); err != nil {
				t.Fatal(err)
			}
			err = ring.Verify(cmd, t0)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	h := newHarness(t, "org-a")
	oldID, _ := h.issuer.ActiveKeyID(t0)
	oldCmd := h.signed(t0)

	// Before the node hears of the new key, commands signed with it are refused.
	rotAt := t0.Add(time.Minute)
	rot, err := h.issuer.Rotate(rotAt, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rot.SignerKeyID != oldID || rot.NewKeyID == oldID {
		t.Fatalf("rotation signer %q new %q, old %q", rot.SignerKeyID, rot.NewKeyID, oldID)
	}
	newCmd := h.signed(rotAt)
	if newCmd.GetKeyId() != rot.NewKeyID {
		t.Fatalf("after rotation Sign uses %q, want the new key %q", newCmd.GetKeyId(), rot.NewKeyID)
	}
	if err := h.ring.Verify(newCmd, rotAt); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new key before announcement: %v, want ErrUnknownKey", err)
	}

	// The announcement, signed by the old key, is accepted.
	annCmd := h.command(rot.Payload)
	if err := h.issuer.SignWith(rot.SignerKeyID, annCmd, rotAt); err != nil {
		t.Fatal(err)
	}
	if err := h.ring.ApplyAnnouncement(annCmd, nil, rotAt.Add(time.Second)); err != nil {
		t.Fatalf("ApplyAnnouncement: %v", err)
	}
	// Applying it again is harmless.
	if err := h.ring.ApplyAnnouncement(annCmd, rot.Announcement, rotAt.Add(2*time.Second)); err != nil {
		t.Fatalf("re-applied announcement: %v", err)
	}

	// During the overlap both keys are accepted.
	for _, at := range []time.Duration{time.Second, 30 * time.Minute, time.Hour - time.Millisecond} {
		if err := h.ring.Verify(newCmd, rotAt.Add(at)); err != nil {
			t.Fatalf("new key at +%s: %v", at, err)
		}
		if err := h.ring.Verify(oldCmd, rotAt.Add(at)); err != nil {
			t.Fatalf("old key during overlap at +%s: %v", at, err)
		}
	}
	// After the overlap only the new key is.
	after := rotAt.Add(time.Hour)
	if err := h.ring.Verify(oldCmd, after); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("old key after retirement: %v, want ErrKeyRetired", err)
	}
	if err := h.ring.Verify(newCmd, after.Add(24*time.Hour)); err != nil {
		t.Fatalf("new key after retirement of old: %v", err)
	}
	// An announcement carried by the retired key is refused too.
	if _, err := h.issuer.Rotate(after, time.Hour); err != nil {
		t.Fatal(err)
	}
	late := h.command(rot.Payload)
	late.KeyId = oldID
	if err := h.issuer.SignWith(oldID, late, after); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("issuer signing with retired key: %v, want ErrKeyRetired", err)
	}

	// Issuer-side states.
	states := map[string]KeyState{}
	for _, ki := range h.issuer.Keys(after) {
		states[ki.KeyID] = ki.State
	}
	if states[oldID] != KeyRetired || states[rot.NewKeyID] != KeyRetiring {
		t.Fatalf("issuer states after second rotation: %v", states)
	}
}

func TestAnnouncementRefusals(t *testing.T) {
	h := newHarness(t, "org-a")
	signerID, _ := h.issuer.ActiveKeyID(t0)
	newPub, _, _ := ed25519.GenerateKey(nil)
	newID, _ := NewKeyID("org-a")
	validKey := func() *pb.CommandKey {
		return &pb.CommandKey{OrgId: "org-a", KeyId: newID, PublicKey: newPub, ValidFromUnixMs: t0.UnixMilli()}
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	otherID, _ := NewKeyID("org-b")

	// Each case builds an announcement and signs the command with signer (nil: the org's active key).
	type tc struct {
		name   string
		ann    *pb.KeyAnnouncement
		signer *OrgKeys
		mutate func(c *pb.ControlCommand)
		pass   *pb.KeyAnnouncement // announcement passed separately (nil: from payload)
		want   error
	}
	attacker, _ := NewOrgKeys("org-a", t0)
	otherOrg, _ := NewOrgKeys("org-b", t0)
	cases := []tc{
		{name: "forged: signed by an unknown key", ann: &pb.KeyAnnouncement{Key: validKey()}, signer: attacker, want: ErrUnknownKey},
		{name: "forged: signed by another org's key", ann: &pb.KeyAnnouncement{Key: validKey()}, signer: otherOrg, want: ErrWrongOrg},
		{name: "tampered after signing", ann: &pb.KeyAnnouncement{Key: validKey()}, mutate: func(c *pb.ControlCommand) { c.Payload[len(c.Payload)-1] ^= 1 }, want: ErrBadSignature},
		{name: "announcement not the carried one", ann: &pb.KeyAnnouncement{Key: validKey()},
			pass: &pb.KeyAnnouncement{Key: &pb.CommandKey{OrgId: "org-a", KeyId: newID, PublicKey: otherPub, ValidFromUnixMs: 1}}, want: ErrPayloadMismatch},
		{name: "payload carries no announcement", ann: nil, want: ErrPayloadMismatch},
		{name: "no validity start", ann: &pb.KeyAnnouncement{Key: func() *pb.CommandKey { k := validKey(); k.ValidFromUnixMs = 0; return k }()}, want: ErrNoValidityStart},
		{name: "key record of another org", ann: &pb.KeyAnnouncement{Key: func() *pb.CommandKey { k := validKey(); k.OrgId = "org-b"; return k }()}, want: ErrWrongOrg},
		{name: "key id of another org", ann: &pb.KeyAnnouncement{Key: &pb.CommandKey{OrgId: "org-a", KeyId: otherID, PublicKey: newPub, ValidFromUnixMs: 1}}, want: ErrWrongOrg},
		{name: "short public key", ann: &pb.KeyAnnouncement{Key: func() *pb.CommandKey { k := validKey(); k.PublicKey = k.PublicKey[:31]; return k }()}, want: ErrMalformedKey},
		{name: "no key", ann: &pb.KeyAnnouncement{}, want: ErrMalformedKey},
		{name: "announced as revoked", ann: &pb.KeyAnnouncement{Key: func() *pb.CommandKey { k := validKey(); k.Revoked = true; return k }()}, want: ErrRevokedKey},
		{name: "rebinds the signer's key id", ann: &pb.KeyAnnouncement{Key: &pb.CommandKey{OrgId: "org-a", KeyId: signerID, PublicKey: newPub, ValidFromUnixMs: 1}}, want: ErrKeyConflict},
		{name: "retires itself", ann: &pb.KeyAnnouncement{Key: validKey(), RetireKeyId: newID, RetireAtUnixMs: t0.Add(time.Hour).UnixMilli()}, want: ErrBadRetirement},
		{name: "retires old key before new is valid", ann: &pb.KeyAnnouncement{Key: validKey(), RetireKeyId: signerID, RetireAtUnixMs: t0.Add(-time.Hour).UnixMilli()}, want: ErrBadRetirement},
		{name: "retirement without time", ann: &pb.KeyAnnouncement{Key: validKey(), RetireKeyId: signerID}, want: ErrBadRetirement},
		{name: "retirement time without key", ann: &pb.KeyAnnouncement{Key: validKey(), RetireAtUnixMs: t0.Add(time.Hour).UnixMilli()}, want: ErrBadRetirement},
		{name: "retires an unknown key", ann: &pb.KeyAnnouncement{Key: validKey(), RetireKeyId: "org-a/k_ffffffffffffffff", RetireAtUnixMs: t0.Add(time.Hour).UnixMilli()}, want: ErrUnknownKey},
		{name: "new key retires before its start", ann: &pb.KeyAnnouncement{Key: func() *pb.CommandKey { k := validKey(); k.RetireAfterUnixMs = k.ValidFromUnixMs; return k }()}, want: ErrBadRetirement},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.ring.Snapshot()
			payload := &pb.CommandPayload{KeyAnnouncement: c.ann}
			if c.ann == nil {
				payload = &pb.CommandPayload{MinerIds: []string{"m"}}
			}
			b, err := marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			cmd := h.command(b)
			signer := c.signer
			if signer == nil {
				signer = h.issuer
			}
			if err := signer.Sign(cmd, t0); err != nil {
				t.Fatal(err)
			}
			if c.mutate != nil {
				c.mutate(cmd)
			}
			err = h.ring.ApplyAnnouncement(cmd, c.pass, t0)
			if !errors.Is(err, c.want) {
				t.Fatalf("ApplyAnnouncement = %v, want %v", err, c.want)
			}
			if !snapshotsEqual(before, h.ring.Snapshot()) {
				t.Fatal("a refused announcement changed the keyring")
			}
		})
	}
	// The forged key is not trusted afterwards.
	fake := h.command(nil)
	if err := attacker.Sign(fake, t0); err != nil {
		t.Fatal(err)
	}
	if err := h.ring.Verify(fake, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("attacker key after forged announcement: %v", err)
	}
}

func TestRetirementNeverPostponed(t *testing.T) {
	h := newHarness(t, "org-a")
	oldID, _ := h.issuer.ActiveKeyID(t0)
	oldCmd := h.signed(t0)
	h.rotate(t0, time.Hour, t0) // old retires at t0+1h

	// A later announcement (signed by the old key, still in overlap) trying to retire it in a week.
	pub, _, _ := ed25519.GenerateKey(nil)
	id, _ := NewKeyID("org-a")
	b, _ := marshal(&pb.CommandPayload{KeyAnnouncement: &pb.KeyAnnouncement{
		Key:         &pb.CommandKey{OrgId: "org-a", KeyId: id, PublicKey: pub, ValidFromUnixMs: t0.UnixMilli()},
		RetireKeyId: oldID, RetireAtUnixMs: t0.Add(7 * 24 * time.Hour).UnixMilli(),
	}})
	cmd := h.command(b)
	if err := h.issuer.SignWith(oldID, cmd, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := h.ring.ApplyAnnouncement(cmd, nil, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := h.ring.Verify(oldCmd, t0.Add(2*time.Hour)); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("old key after its first retirement: %v, want ErrKeyRetired", err)
	}
}

func TestRevokedKeyRefusedForever(t *testing.T) {
	h := newHarness(t, "org-a")
	oldID, _ := h.issuer.ActiveKeyID(t0)
	oldCmd := h.signed(t0)
	oldRecord := h.issuer.PublicKeys()[0]
	h.rotate(t0, 24*time.Hour, t0)
	h.revoke(oldID, t0.Add(time.Minute))

	if err := h.ring.Verify(oldCmd, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("revoked key: %v, want ErrRevokedKey", err)
	}
	// Re-announced (by a trusted key), with the same public key and a fresh validity start: still refused.
	b, _ := marshal(&pb.CommandPayload{KeyAnnouncement: &pb.KeyAnnouncement{
		Key: &pb.CommandKey{OrgId: "org-a", KeyId: oldID, PublicKey: oldRecord.GetPublicKey(), ValidFromUnixMs: t0.Add(time.Hour).UnixMilli()},
	}})
	cmd := h.command(b)
	if err := h.issuer.Sign(cmd, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := h.ring.ApplyAnnouncement(cmd, nil, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("re-announced revoked key: %v, want ErrRevokedKey", err)
	}
	if err := h.ring.Verify(oldCmd, t0.Add(2*time.Hour)); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("revoked key after re-announcement: %v, want ErrRevokedKey", err)
	}

	// Surviving a restart: the snapshot keeps the revocation, even when the initial list says otherwise.
	snap := h.ring.Snapshot()
	restored, err := NewKeyring("org-a", append(snap, oldRecord))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := restored.Verify(oldCmd, t0.Add(2*time.Minute)); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("revoked key after restore: %v, want ErrRevokedKey", err)
	}
	if !snapshotsEqual(snap, restored.Snapshot()) {
		t.Fatal("restored snapshot differs")
	}

	// Revocation of an id never trusted is remembered too.
	neverID, _ := NewKeyID("org-a")
	b, _ = marshal(&pb.CommandPayload{KeyRevocation: &pb.KeyRevocation{OrgId: "org-a", KeyId: neverID}})
	rc := h.command(b)
	_ = h.issuer.Sign(rc, t0.Add(3*time.Minute))
	if err := h.ring.ApplyRevocation(rc, nil, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	b, _ = marshal(&pb.CommandPayload{KeyAnnouncement: &pb.KeyAnnouncement{
		Key: &pb.CommandKey{OrgId: "org-a", KeyId: neverID, PublicKey: pub, ValidFromUnixMs: 1},
	}})
	ac := h.command(b)
	_ = h.issuer.Sign(ac, t0.Add(3*time.Minute))
	if err := h.ring.ApplyAnnouncement(ac, nil, t0.Add(3*time.Minute)); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("announcement of a pre-revoked id: %v, want ErrRevokedKey", err)
	}
}

func TestRevocationRefusals(t *testing.T) {
	h := newHarness(t, "org-a")
	id, _ := h.issuer.ActiveKeyID(t0)
	attacker, _ := NewOrgKeys("org-a", t0)
	for _, c := range []struct {
		name   string
		rev    *pb.KeyRevocation
		signer *OrgKeys
		pass   *pb.KeyRevocation
		want   error
	}{
		{"signed by unknown key", &pb.KeyRevocation{OrgId: "org-a", KeyId: id}, attacker, nil, ErrUnknownKey},
		{"other org", &pb.KeyRevocation{OrgId: "org-b", KeyId: "org-b/k_1"}, nil, nil, ErrWrongOrg},
		{"key id of other org", &pb.KeyRevocation{OrgId: "org-a", KeyId: "org-b/k_1"}, nil, nil, ErrWrongOrg},
		{"malformed key id", &pb.KeyRevocation{OrgId: "org-a", KeyId: "k_1"}, nil, nil, ErrMalformedKey},
		{"not the carried one", &pb.KeyRevocation{OrgId: "org-a", KeyId: "org-a/k_1"}, nil, &pb.KeyRevocation{OrgId: "org-a", KeyId: id}, ErrPayloadMismatch},
		{"carries none", nil, nil, nil, ErrPayloadMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.ring.Snapshot()
			b, _ := marshal(&pb.CommandPayload{KeyRevocation: c.rev})
			cmd := h.command(b)
			signer := c.signer
			if signer == nil {
				signer = h.issuer
			}
			_ = signer.Sign(cmd, t0)
			if err := h.ring.ApplyRevocation(cmd, c.pass, t0); !errors.Is(err, c.want) {
				t.Fatalf("ApplyRevocation = %v, want %v", err, c.want)
			}
			if !snapshotsEqual(before, h.ring.Snapshot()) {
				t.Fatal("a refused revocation changed the keyring")
			}
		})
	}
	cmd := h.command([]byte{0xff, 0xff})
	_ = h.issuer.Sign(cmd, t0)
	if err := h.ring.ApplyRevocation(cmd, nil, t0); !errors.Is(err, ErrMalformedCommand) {
		t.Fatalf("undecodable payload: %v, want ErrMalformedCommand", err)
	}
}

func TestNewKeyringRefusals(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		name string
		org  string
		keys []*pb.CommandKey
		want error
	}{
		{"empty org", "", nil, ErrEmptyOrg},
		{"nil key", "o", []*pb.CommandKey{nil}, ErrMalformedKey},
		{"other org", "o", []*pb.CommandKey{{OrgId: "p", KeyId: "p/k_1", PublicKey: pub}}, ErrWrongOrg},
		{"key id of other org", "o", []*pb.CommandKey{{OrgId: "o", KeyId: "p/k_1", PublicKey: pub}}, ErrWrongOrg},
		{"bad key id", "o", []*pb.CommandKey{{OrgId: "o", KeyId: "k_1", PublicKey: pub}}, ErrMalformedKey},
		{"short public key", "o", []*pb.CommandKey{{OrgId: "o", KeyId: "o/k_1", PublicKey: pub[:3]}}, ErrMalformedKey},
		{"conflict", "o", []*pb.CommandKey{{OrgId: "o", KeyId: "o/k_1", PublicKey: pub}, {OrgId: "o", KeyId: "o/k_1", PublicKey: pub2}}, ErrKeyConflict},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewKeyring(c.org, c.keys); !errors.Is(err, c.want) {
				t.Fatalf("NewKeyring = %v, want %v", err, c.want)
			}
		})
	}
}

func TestOrgKeysLifecycle(t *testing.T) {
	o, err := NewOrgKeys("org-a", t0)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := o.ActiveKeyID(t0)
	if !regexp.MustCompile(`^org-a/k_[0-9a-f]{16}$`).MatchString(k1) {
		t.Fatalf("key id %q", k1)
	}
	if _, err := o.Rotate(t0, 0); !errors.Is(err, ErrBadOverlap) {
		t.Fatalf("Rotate with zero overlap: %v", err)
	}
	if _, err := o.Revoke(k1, t0); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("revoking the only key: %v, want ErrNoActiveKey", err)
	}
	if err := o.Retire(k1, t0); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("retiring the only key: %v, want ErrNoActiveKey", err)
	}
	rot, err := o.Rotate(t0.Add(time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k2 := rot.NewKeyID
	rot3, err := o.Rotate(t0.Add(2*time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k3 := rot3.NewKeyID
	if rot3.SignerKeyID != k2 {
		t.Fatalf("second rotation signed by %q, want %q", rot3.SignerKeyID, k2)
	}
	if _, err := o.Revoke(k2, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(3 * time.Minute)
	want := map[string]KeyState{k1: KeyRetiring, k2: KeyRevoked, k3: KeyActive}
	for _, ki := range o.Keys(at) {
		if ki.State != want[ki.KeyID] {
			t.Errorf("key %s at +3m: %s, want %s", ki.KeyID, ki.State, want[ki.KeyID])
		}
	}
	if got := o.Keys(t0.Add(2 * time.Hour))[0].State; got != KeyRetired {
		t.Errorf("k1 after overlap: %s, want retired", got)
	}
	if err := o.SignWith(k2, &pb.ControlCommand{}, at); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("SignWith revoked key: %v", err)
	}
	if err := o.SignWith("org-a/k_nope", &pb.ControlCommand{}, at); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("SignWith unknown key: %v", err)
	}
	if err := o.Retire(k1, at); err != nil {
		t.Fatalf("Retire k1: %v", err)
	}
	if got := o.Keys(at)[0].State; got != KeyRetired {
		t.Errorf("k1 after Retire: %s", got)
	}
	if KeyState(0).String() == "" || KeyPending.String() != "pending" {
		t.Error("KeyState.String")
	}

	// Export / import: the imported issuer signs commands the same keyring accepts.
	ring, err := NewKeyring("org-a", o.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	o2, err := ImportOrgKeys("org-a", o.Export())
	if err != nil {
		t.Fatalf("ImportOrgKeys: %v", err)
	}
	cmd := &pb.ControlCommand{NodeId: "node-1", MonotonicSeq: 9}
	if err := o2.Sign(cmd, at); err != nil {
		t.Fatal(err)
	}
	if cmd.GetKeyId() != k3 {
		t.Fatalf("imported issuer signs with %q, want %q", cmd.GetKeyId(), k3)
	}
	if err := ring.Verify(cmd, at); err != nil {
		t.Fatalf("keyring refuses imported issuer's command: %v", err)
	}
	// A keyring built from PublicKeys refuses the revoked key at once.
	old := &pb.ControlCommand{NodeId: "node-1"}
	old.KeyId = k2
	if err := ring.Verify(old, at); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("revoked key from PublicKeys: %v", err)
	}

	// Import refusals.
	recs := o.Export()
	bad := append([]KeyRecord(nil), recs...)
	bad[0] = KeyRecord{Key: recs[0].Key, PrivateSeed: recs[1].PrivateSeed}
	if _, err := ImportOrgKeys("org-a", bad); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("import with mismatched seed: %v", err)
	}
	if _, err := ImportOrgKeys("org-b", recs); !errors.Is(err, ErrWrongOrg) {
		t.Fatalf("import into other org: %v", err)
	}
	if _, err := ImportOrgKeys("org-a", append(recs, recs[0])); !errors.Is(err, ErrKeyConflict) {
		t.Fatalf("import with duplicate: %v", err)
	}
	if _, err := ImportOrgKeys("org-a", []KeyRecord{{Key: recs[0].Key, PrivateSeed: []byte{1}}}); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("import with short seed: %v", err)
	}
	if _, err := ImportOrgKeys("org-a", []KeyRecord{{}}); !errors.Is(err, ErrMalformedKey) {
		t.Fatalf("import with nil key: %v", err)
	}
	if _, err := NewOrgKeys("", t0); !errors.Is(err, ErrEmptyOrg) {
		t.Fatalf("NewOrgKeys empty org: %v", err)
	}
}

func TestKeyIDOrg(t *testing.T) {
	for id, want := range map[string]string{"o/k_1": "o", "a/b/k_1": "a/b", "k_1": "", "/k_1": "", "o/": ""} {
		got, ok := KeyIDOrg(id)
		if got != want || ok != (want != "") {
			t.Errorf("KeyIDOrg(%q) = %q, %v", id, got, ok)
		}
	}
	if _, err := NewKeyID(""); !errors.Is(err, ErrEmptyOrg) {
		t.Fatal(err)
	}
}
