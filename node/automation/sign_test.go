package automation

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"google.golang.org/protobuf/proto"
)

var t0 = time.Date(2026, 3, 8, 20, 0, 0, 0, time.UTC) // 16:00 EDT, the day New York springs forward

// keys is one org's issuer (the cloud) and a node's keyring seeded from it, as at enrollment.
type keys struct {
	issuer *signing.OrgKeys
	ring   *signing.Keyring
}

func newKeys(t *testing.T, org string) keys {
	t.Helper()
	is, err := signing.NewOrgKeys(org, t0.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewKeyring(org, is.PublicKeys())
	if err != nil {
		t.Fatal(err)
	}
	return keys{issuer: is, ring: ring}
}

func samplePolicy(version uint64) Policy {
	tp, _ := NewTrustedPools("stratum+tcp://pool.example.com:3333")
	return Policy{
		Version: version, Org: "org-1", Site: "site-a",
		Rules: Rules{
			Overheat:     []OverheatRule{{ID: "overheat-1", ThresholdC: 90, HysteresisC: 10, Action: "curtail"}},
			HashrateDrop: []HashrateDropRule{{ID: "hashrate-1", DropPct: 30, Window: Duration(10 * time.Minute), MinInterval: Duration(time.Hour), MaxConcurrent: 5}},
			Unreachable:  []UnreachableRule{{ID: "unreachable-1", After: Duration(30 * time.Minute)}},
		},
		Schedules:    []Schedule{{ID: "evening", TimeZone: "America/New_York", Start: "17:00", End: "21:00", TargetKW: 50}},
		TrustedPools: tp,
	}
}

func TestSignAndVerifyPolicy(t *testing.T) {
	k := newKeys(t, "org-1")
	sp, err := SignPolicy(samplePolicy(3), k.issuer, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := VerifyPolicy(sp, k.ring, "site-a", t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 3 || p.Rules.Overheat[0].ThresholdC != 90 || p.Schedules[0].TimeZone != "America/New_York" ||
		p.Rules.HashrateDrop[0].Window.D() != 10*time.Minute || !p.compiledOK() {
		t.Fatalf("%+v", p)
	}
	if ok, _ := p.TrustedPools.Allows("stratum+tcp://pool.example.com:3333"); !ok {
		t.Fatal("trusted pools lost in transit")
	}
	// Stored and read back.
	b, err := EncodeSignedPolicy(sp)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSignedPolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStoredPolicy(back, k.ring, "site-a"); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPolicyRefusals(t *testing.T) {
	k := newKeys(t, "org-1")
	good, err := SignPolicy(samplePolicy(3), k.issuer, t0)
	if err != nil {
		t.Fatal(err)
	}
	other := newKeys(t, "org-2")
	otherPolicy := samplePolicy(3)
	otherPolicy.Org = "org-2"
	foreign, err := SignPolicy(otherPolicy, other.issuer, t0)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(body []byte) *SignedPolicy {
		id, _ := k.issuer.ActiveKeyID(t0)
		var priv ed25519.PrivateKey
		for _, r := range k.issuer.Export() {
			if r.Key.GetKeyId() == id {
				priv = ed25519.NewKeyFromSeed(r.PrivateSeed)
			}
		}
		return &SignedPolicy{Body: body, KeyID: id, Signature: ed25519.Sign(priv, PolicyBytes(id, body))}
	}
	tampered := *good
	tampered.Body = []byte(strings.Replace(string(good.Body), `"threshold_c":90`, `"threshold_c":99`, 1))
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	strangerSigned := *good
	strangerSigned.Signature = ed25519.Sign(stranger, PolicyBytes(good.KeyID, good.Body))
	wrongOrgInBody := samplePolicy(3)
	wrongOrgInBody.Org = "org-2"
	wrongOrgBody, _ := wrongOrgInBody.Encode()

	cases := []struct {
		name string
		sp   *SignedPolicy
		site string
		want []error
	}{
		{"nil", nil, "site-a", []error{ErrUnsignedPolicy}},
		{"no signature", &SignedPolicy{Body: good.Body, KeyID: good.KeyID}, "site-a", []error{ErrUnsignedPolicy}},
		{"no key id", &SignedPolicy{Body: good.Body, Signature: good.Signature}, "site-a", []error{ErrUnsignedPolicy}},
		{"tampered body", &tampered, "site-a", []error{ErrBadPolicySignature, signing.ErrBadSignature}},
		{"signed by a stranger", &strangerSigned, "site-a", []error{ErrBadPolicySignature}},
		{"truncated signature", &SignedPolicy{Body: good.Body, KeyID: good.KeyID, Signature: good.Signature[:10]}, "site-a", []error{ErrBadPolicySignature}},
		{"another org's key", foreign, "site-a", []error{ErrPolicyKey, signing.ErrWrongOrg}},
		{"unknown key", &SignedPolicy{Body: good.Body, KeyID: "org-1/k_0000000000000000", Signature: good.Signature}, "site-a", []error{ErrPolicyKey, signing.ErrUnknownKey}},
		{"malformed key id", &SignedPolicy{Body: good.Body, KeyID: "nokey", Signature: good.Signature}, "site-a", []error{ErrPolicyKey}},
		{"another site", good, "site-b", []error{ErrWrongSite}},
		{"unknown field", resign([]byte(strings.Replace(string(good.Body), `"version":3`, `"version":3,"new_rule":{}`, 1))), "site-a", []error{ErrMalformedPolicy}},
		{"trailing data", resign(append(append([]byte{}, good.Body...), []byte(` {}`)...)), "site-a", []error{ErrMalformedPolicy}},
		{"invalid rule", resign([]byte(strings.Replace(string(good.Body), `"action":"curtail"`, `"action":"explode"`, 1))), "site-a", []error{ErrInvalidPolicy}},
		{"bad pool pattern", resign([]byte(strings.Replace(string(good.Body), `stratum+tcp://pool.example.com:3333`, `pool.example.com`, 1))), "site-a", []error{ErrMalformedPolicy, ErrBadPoolPattern}},
		{"body claims another org", resign(wrongOrgBody), "site-a", []error{ErrPolicyKey, signing.ErrWrongOrg}},
	}
	for _, c := range cases {
		_, err := VerifyPolicy(c.sp, k.ring, c.site, t0)
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%s: %v, want %v", c.name, err, w)
			}
		}
	}
}

// A command signature never verifies as a policy signature (the contexts differ), even over the same payload.
func TestCommandSignatureIsNotAPolicySignature(t *testing.T) {
	k := newKeys(t, "org-1")
	good, _ := SignPolicy(samplePolicy(3), k.issuer, t0)
	cmd := &pb.ControlCommand{Actor: "user:alice", NodeId: "n1", MonotonicSeq: 9, Payload: good.Body}
	if err := k.issuer.Sign(cmd, t0); err != nil {
		t.Fatal(err)
	}
	forged := &SignedPolicy{Body: good.Body, KeyID: cmd.GetKeyId(), Signature: cmd.GetSignature()}
	if _, err := VerifyPolicy(forged, k.ring, "site-a", t0); !errors.Is(err, ErrBadPolicySignature) {
		t.Fatal(err)
	}
}

func TestPolicyKeyLifecycle(t *testing.T) {
	k := newKeys(t, "org-1")
	old, _ := SignPolicy(samplePolicy(3), k.issuer, t0)
	oldKey := old.KeyID

	// Rotate: the new key is announced to the node in a command signed by the old one.
	rot, err := k.issuer.Rotate(t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 1, Payload: rot.Payload}
	if err := k.issuer.SignWith(rot.SignerKeyID, cmd, t0); err != nil {
		t.Fatal(err)
	}
	if err := k.ring.ApplyAnnouncement(cmd, nil, t0); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(2 * time.Hour) // the old key has retired
	if _, err := VerifyPolicy(old, k.ring, "site-a", later); !errors.Is(err, ErrPolicyKey) || !errors.Is(err, signing.ErrKeyRetired) {
		t.Fatalf("a new policy signed by a retired key: %v", err)
	}
	if _, err := VerifyStoredPolicy(old, k.ring, "site-a"); err != nil {
		t.Fatalf("a stored policy signed before its key retired must still load: %v", err)
	}
	fresh, err := SignPolicy(samplePolicy(4), k.issuer, later)
	if err != nil || fresh.KeyID == oldKey {
		t.Fatal(err)
	}
	if _, err := VerifyPolicy(fresh, k.ring, "site-a", later); err != nil {
		t.Fatal(err)
	}

	// Revoke the old key: what it signed no longer loads, even from the store.
	rev, err := k.issuer.Revoke(oldKey, later)
	if err != nil {
		t.Fatal(err)
	}
	rcmd := &pb.ControlCommand{NodeId: "n1", MonotonicSeq: 2, Payload: rev.Payload}
	if err := k.issuer.Sign(rcmd, later); err != nil {
		t.Fatal(err)
	}
	if err := k.ring.ApplyRevocation(rcmd, nil, later); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyStoredPolicy(old, k.ring, "site-a"); !errors.Is(err, signing.ErrRevokedKey) {
		t.Fatal(err)
	}

	// A key announced for the future is not valid yet.
	future, _ := signing.NewOrgKeys("org-1", t0.Add(24*time.Hour))
	fk := future.PublicKeys()[0]
	ring2, _ := signing.NewKeyring("org-1", []*pb.CommandKey{proto.Clone(fk).(*pb.CommandKey)})
	sp, _ := SignPolicy(samplePolicy(5), future, t0.Add(24*time.Hour))
	if _, err := VerifyPolicy(sp, ring2, "site-a", t0); !errors.Is(err, signing.ErrKeyNotYetValid) {
		t.Fatal(err)
	}
}

func TestSignPolicyRefusesInvalid(t *testing.T) {
	k := newKeys(t, "org-1")
	p := samplePolicy(0)
	if _, err := SignPolicy(p, k.issuer, t0); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatal(err)
	}
	p = samplePolicy(1)
	p.Org = "org-9"
	if _, err := SignPolicy(p, k.issuer, t0); !errors.Is(err, signing.ErrWrongOrg) {
		t.Fatal(err)
	}
	p = samplePolicy(1)
	p.Rules.Unreachable = append(p.Rules.Unreachable, UnreachableRule{ID: "overheat-1", After: Duration(time.Hour)})
	if err := p.Compile(); !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), "used twice") {
		t.Fatal(err)
	}
}

func TestReplacesNewerOnly(t *testing.T) {
	cur := samplePolicy(5)
	for _, v := range []uint64{1, 4, 5} {
		if err := Replaces(&cur, samplePolicy(v)); !errors.Is(err, ErrStalePolicy) {
			t.Errorf("v%d over v5: %v", v, err)
		}
	}
	if err := Replaces(&cur, samplePolicy(6)); err != nil {
		t.Fatal(err)
	}
	if err := Replaces(nil, samplePolicy(1)); err != nil {
		t.Fatal(err)
	}
}
