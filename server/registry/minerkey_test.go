package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/signing"
)

// TestAnnounceMinerKey: a node's hello announcing a rotated miner-signing key, signed by its identity key,
// replaces the key in its record (and is logged); forged, malformed, reused-identity and unknown-node
// announcements are refused and change nothing; the current key or no announcement is a no-op.
func TestAnnounceMinerKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	code, _, err := f.reg.MintCode("site-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	k := newNodeKeys()
	resp, err := f.reg.Enroll(ctx, k.request(code))
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetNodeId()
	if _, err := f.reg.Confirm(id, signing.Fingerprint(k.id.Public().(ed25519.PublicKey))); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Enroll(ctx, k.request(code)); err != nil {
		t.Fatal(err)
	}
	minerKey := func() ed25519.PublicKey {
		rec, err := f.st.NodeRecord(id)
		if err != nil {
			t.Fatal(err)
		}
		return rec.GetMinerSigningPublicKey()
	}
	original := minerKey()
	newPub, _, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(priv ed25519.PrivateKey, key []byte) []byte {
		return ed25519.Sign(priv, signing.MinerKeyBytes(id, key))
	}
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	idPub := k.id.Public().(ed25519.PublicKey)

	for name, c := range map[string]struct{ key, sig []byte }{
		"signed by another key":   {newPub, sign(stranger, newPub)},
		"signature for other key": {newPub, sign(k.id, original)},
		"short key":               {newPub[:16], sign(k.id, newPub[:16])},
		"no signature":            {newPub, nil},
		"truncated signature":     {newPub, sign(k.id, newPub)[:40]},
		"identity key reused":     {idPub, sign(k.id, idPub)},
	} {
		if err := f.reg.AnnounceMinerKey(id, c.key, c.sig); !errors.Is(err, ErrBadMinerKey) {
			t.Errorf("%s: %v, want ErrBadMinerKey", name, err)
		}
		if !minerKey().Equal(original) {
			t.Fatalf("%s changed the record", name)
		}
	}
	if err := f.reg.AnnounceMinerKey("n0000000000000000", newPub, sign(k.id, newPub)); err == nil {
		t.Error("unknown node accepted")
	}
	if err := f.reg.AnnounceMinerKey(id, nil, nil); err != nil || !minerKey().Equal(original) {
		t.Fatalf("no announcement: %v", err)
	}
	if err := f.reg.AnnounceMinerKey(id, original, sign(k.id, original)); err != nil || !minerKey().Equal(original) {
		t.Fatalf("current key: %v", err)
	}
	if err := f.reg.AnnounceMinerKey(id, newPub, sign(k.id, newPub)); err != nil || !minerKey().Equal(newPub) {
		t.Fatalf("rotated key: %v (record %x)", err, minerKey())
	}
	evs, err := f.reg.SecurityEvents(50)
	if err != nil {
		t.Fatal(err)
	}
	accepted, refused := 0, 0
	for _, e := range evs {
		if e.Kind == "miner-key" {
			switch e.Result {
			case "accepted":
				accepted++
			case "refused":
				refused++
			}
		}
	}
	if accepted != 1 || refused != 6 {
		t.Fatalf("security events: %d accepted, %d refused; want 1 and 6", accepted, refused)
	}
}
