package credentials_test

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"

	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/node/credentials"
	vault "github.com/hashfleet/hashfleet/server/credentials"
)

func (n *node) key(org string) vault.NodeKey {
	return vault.NodeKey{NodeID: n.id, OrgID: org, PublicKey: n.pub().Bytes()}
}

// The whole life of a credential across both halves, with real node identities: the operator's Put, the
// node's just-in-time Use, a transfer re-sealed by the outgoing node's Opener, and a revocation rotated by
// the trusted partner.
func TestCredentialLifecycleAcrossVaultAndNodes(t *testing.T) {
	const org = "org-1"
	v, err := vault.New(vault.NewMemStore(), vault.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a := newNode(t, "node-a", dev)
	b := newNode(t, "node-b", dev)
	b2 := newNode(t, "node-b2", dev)

	pw := []byte("operator-entered-pool-pw")
	if err := v.Put(org, dev, pool, pw, []vault.NodeKey{a.key(org)}); err != nil {
		t.Fatal(err)
	}
	envA, err := v.Envelope(a.id, dev, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.op.Use(envA, dev, pool, func(s []byte) error {
		if !bytes.Equal(s, pw) {
			t.Fatalf("a read %q", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.op.Open(envA, dev, pool); err == nil {
		t.Fatal("b opened a's envelope")
	}

	// Transfer to the pair {b, b2}: a re-seals with its Opener.
	req, err := v.Transfer(dev, a.id, []vault.NodeKey{b.key(org), b2.key(org)})
	if err != nil {
		t.Fatal(err)
	}
	var up []*sealing.Envelope
	for _, it := range req.Items {
		to, err := sealing.ParsePublicKey(it.To.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		env, err := a.op.Reseal(it.Source, req.DeviceID, it.Purpose, it.To.NodeID, to)
		if err != nil {
			t.Fatal(err)
		}
		up = append(up, env)
	}
	if err := v.CompleteTransfer(dev, a.id, up); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Envelope(a.id, dev, pool); !errors.Is(err, vault.ErrNotOwner) {
		t.Fatalf("a still gets an envelope after the transfer: %v", err)
	}
	for _, n := range []*node{b, b2} {
		env, err := v.Envelope(n.id, dev, pool)
		if err != nil {
			t.Fatal(err)
		}
		got, err := n.op.Open(env, dev, pool)
		if err != nil || !bytes.Equal(got, pw) {
			t.Fatalf("%s after transfer: %q, %v", n.id, got, err)
		}
		credentials.Wipe(got)
		if _, err := a.op.Open(env, dev, pool); err == nil {
			t.Fatalf("a opened %s's envelope", n.id)
		}
	}

	// b2 is compromised: revoke it; b sets a new password on the miner and seals it to the owners left.
	if _, err := v.RevokeNode(b2.id); err != nil {
		t.Fatal(err)
	}
	if st, _ := v.Status(dev); st.State != vault.StateRevocationPending {
		t.Fatalf("after revocation: %+v", st)
	}
	newPW := []byte("rotated-by-node-b")
	envs, err := b.op.SealRotation(dev, pool, newPW, []sealing.Recipient{b.recipient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CompleteRotation(dev, pool, b.id, envs); err != nil {
		t.Fatal(err)
	}
	st, err := v.Status(dev)
	if err != nil || st.State != vault.StateActive || st.Credentials[0].Generation != 2 {
		t.Fatalf("after rotation: %+v, %v", st, err)
	}
	env, err := v.Envelope(b.id, dev, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.op.Use(env, dev, pool, func(s []byte) error {
		if !bytes.Equal(s, newPW) {
			t.Fatalf("b read %q", s)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Envelopes(b2.id); !errors.Is(err, vault.ErrNodeRevoked) {
		t.Fatalf("revoked b2 still served: %v", err)
	}
}
