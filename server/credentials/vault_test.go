package credentials

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

const (
	dev1 = "miner-1"
	dev2 = "miner-2"
	pool = "pool-password/0"
	web  = sealing.PurposeMinerLogin
)

// Both nodes of a pair can read the device's credential, each with its own envelope; nobody else can.
func TestPutSealsToEveryOwner(t *testing.T) {
	for name, mk := range map[string]func(*testing.T) *harness{"mem": newHarness, "badger": newBadgerHarness} {
		t.Run(name, func(t *testing.T) {
			h := mk(t)
			a, a2, c := newTestNode(t, "node-a"), newTestNode(t, "node-a2"), newTestNode(t, "node-c")
			pw := secretOf("pool")
			h.put(dev1, pool, pw, a, a2)
			h.mustRead(a, dev1, pool, pw)
			h.mustRead(a2, dev1, pool, pw)
			h.mustNotRead(c, dev1, pool)

			// a cannot use a2's envelope.
			env2, err := h.v.Envelope(a2.id, dev1, pool)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sealing.Open(a.priv, env2, a2.id, dev1, pool); err == nil {
				t.Fatal("a opened a2's envelope")
			}
			envs, err := h.v.Envelopes(a.id)
			if err != nil || len(envs) != 1 || envs[0].NodeID != a.id {
				t.Fatalf("Envelopes(a) = %v, %v", envs, err)
			}
			st := h.status(dev1)
			if st.State != StateActive || !slices.Equal(st.Owners, []string{"node-a", "node-a2"}) ||
				len(st.Credentials) != 1 || st.Credentials[0].Generation != 1 {
				t.Fatalf("status %+v", st)
			}
			// A second Put is a new generation; the old secret is gone.
			pw2 := secretOf("pool2")
			h.put(dev1, pool, pw2, a2, a) // owner order does not matter
			h.mustRead(a, dev1, pool, pw2)
			if g := h.credState(dev1, pool).Generation; g != 2 {
				t.Fatalf("generation %d, want 2", g)
			}
		})
	}
}

func TestPutRefusals(t *testing.T) {
	h := newHarness(t)
	a, b := newTestNode(t, "node-a"), newTestNode(t, "node-b")
	other := newTestNodeIn(t, "node-x", "org-2")
	h.put(dev1, pool, secretOf("p"), a)
	badKey := a.key
	badKey.PublicKey = badKey.PublicKey[:31]
	rekeyed := newTestNode(t, "node-a") // same id, new key
	cases := []struct {
		name   string
		org    string
		dev    string
		pt     []byte
		owners []NodeKey
		want   error
	}{
		{"no owners", org, dev2, secretOf("x"), nil, ErrInvalidOwners},
		{"duplicate owner", org, dev2, secretOf("x"), keys(a, a), ErrInvalidOwners},
		{"bad key", org, dev2, secretOf("x"), []NodeKey{badKey}, sealing.ErrInvalidKey},
		{"owner of another org", org, dev2, secretOf("x"), keys(other), ErrWrongOrg},
		{"device of another org", "org-2", dev1, secretOf("x"), keys(other), ErrWrongOrg},
		{"other owners", org, dev1, secretOf("x"), keys(b), ErrOwnersMismatch},
		{"added owner", org, dev1, secretOf("x"), keys(a, b), ErrOwnersMismatch},
		{"owner re-keyed", org, dev1, secretOf("x"), keys(rekeyed), ErrOwnersMismatch},
		{"empty plaintext", org, dev2, nil, keys(a), sealing.ErrPlaintextSize},
		{"bad device id", org, "", secretOf("x"), keys(a), sealing.ErrInvalidBinding},
		{"empty org", "", dev2, secretOf("x"), keys(a), sealing.ErrInvalidBinding},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := h.v.Put(c.org, c.dev, pool, c.pt, c.owners); !errors.Is(err, c.want) {
				t.Fatalf("Put: %v, want %v", err, c.want)
			}
		})
	}
	if _, err := h.v.RevokeNode(b.id); err != nil {
		t.Fatal(err)
	}
	if err := h.v.Put(org, dev2, pool, secretOf("x"), keys(b)); !errors.Is(err, ErrNodeRevoked) {
		t.Fatalf("Put to a revoked node: %v", err)
	}
	if _, err := h.v.Status(dev2); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("a refused Put left a record: %v", err)
	}
}

func TestKeyFromRecord(t *testing.T) {
	a := newTestNode(t, "node-a")
	rec := &pb.NodeRecord{NodeId: "node-a", OrgId: org, CredentialPublicKey: a.key.PublicKey, Confirmed: true}
	k, err := KeyFromRecord(rec)
	if err != nil || !k.equal(a.key) {
		t.Fatalf("KeyFromRecord: %v", err)
	}
	for name, r := range map[string]*pb.NodeRecord{
		"unconfirmed": {NodeId: "n", OrgId: org, CredentialPublicKey: a.key.PublicKey},
		"revoked":     {NodeId: "n", OrgId: org, CredentialPublicKey: a.key.PublicKey, Confirmed: true, Revoked: true},
		"no key":      {NodeId: "n", OrgId: org, Confirmed: true},
		"nil":         nil,
	} {
		if _, err := KeyFromRecord(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Transfer A → B: A re-seals, B reads, A's envelopes are gone, and only then.
func TestTransferReSealsThroughOutgoingNode(t *testing.T) {
	h := newBadgerHarness(t)
	a, b := newTestNode(t, "node-a"), newTestNode(t, "node-b")
	pw, login := secretOf("pool"), secretOf("login")
	h.put(dev1, pool, pw, a)
	h.put(dev1, web, login, a)

	req, err := h.v.Transfer(dev1, a.id, keys(b))
	if err != nil {
		t.Fatal(err)
	}
	if req.Done || len(req.Items) != 2 || req.From != a.id {
		t.Fatalf("reseal request %+v", req)
	}
	st := h.status(dev1)
	if st.State != StateTransferPending || st.Transfer == nil || st.Transfer.Outstanding != 2 {
		t.Fatalf("status during transfer %+v", st)
	}
	// Until the upload, A still reads (it still commands the device) and B does not.
	h.mustRead(a, dev1, pool, pw)
	h.mustNotRead(b, dev1, pool)
	if err := h.v.Put(org, dev1, pool, secretOf("x"), keys(a)); !errors.Is(err, ErrTransferPending) {
		t.Fatalf("Put during transfer: %v", err)
	}
	if _, err := h.v.Transfer(dev1, a.id, keys(b)); !errors.Is(err, ErrTransferPending) {
		t.Fatalf("second Transfer: %v", err)
	}
	// After a restart the work can be fetched again.
	again, err := h.v.ResealWork(dev1, a.id)
	if err != nil || len(again.Items) != 2 {
		t.Fatalf("ResealWork: %+v, %v", again, err)
	}

	envs := a.reseal(t, req)
	if err := h.v.CompleteTransfer(dev1, a.id, envs); err != nil {
		t.Fatal(err)
	}
	h.mustRead(b, dev1, pool, pw)
	h.mustRead(b, dev1, web, login)
	h.mustNotRead(a, dev1, pool)
	h.mustNotRead(a, dev1, web)
	st = h.status(dev1)
	if st.State != StateActive || !slices.Equal(st.Owners, []string{"node-b"}) || st.Transfer != nil {
		t.Fatalf("status after transfer %+v", st)
	}
	for _, c := range st.Credentials {
		if !slices.Equal(c.Holders, []string{"node-b"}) || c.Generation != 1 {
			t.Fatalf("credential after transfer %+v", c)
		}
	}
	// B is now the owner: Puts name B.
	h.put(dev1, pool, secretOf("p2"), b)
	if err := h.v.Put(org, dev1, pool, secretOf("p3"), keys(a)); !errors.Is(err, ErrOwnersMismatch) {
		t.Fatalf("Put to the old owner: %v", err)
	}
}

// A pair {A, A2} hands the device to a new pair {B, B2}; then the new pair drops B2 (no re-seal needed).
func TestTransferBetweenPairs(t *testing.T) {
	h := newHarness(t)
	a, a2, b, b2 := newTestNode(t, "a"), newTestNode(t, "a2"), newTestNode(t, "b"), newTestNode(t, "b2")
	pw := secretOf("pool")
	h.put(dev1, pool, pw, a, a2)
	req, err := h.v.Transfer(dev1, a2.id, keys(b, b2))
	if err != nil || len(req.Items) != 2 {
		t.Fatalf("Transfer: %+v, %v", req, err)
	}
	if err := h.v.CompleteTransfer(dev1, a2.id, a2.reseal(t, req)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{b, b2} {
		h.mustRead(n, dev1, pool, pw)
	}
	for _, n := range []*testNode{a, a2} {
		h.mustNotRead(n, dev1, pool)
	}
	req, err = h.v.Transfer(dev1, b.id, keys(b))
	if err != nil || !req.Done || len(req.Items) != 0 {
		t.Fatalf("shrinking transfer: %+v, %v", req, err)
	}
	h.mustRead(b, dev1, pool, pw)
	h.mustNotRead(b2, dev1, pool)
	// Growing back to a pair: B re-seals to B2 only, B keeps its envelope.
	req, err = h.v.Transfer(dev1, b.id, keys(b, b2))
	if err != nil || len(req.Items) != 1 || req.Items[0].To.NodeID != "b2" {
		t.Fatalf("growing transfer: %+v, %v", req, err)
	}
	if err := h.v.CompleteTransfer(dev1, b.id, b.reseal(t, req)); err != nil {
		t.Fatal(err)
	}
	h.mustRead(b2, dev1, pool, pw)
	h.mustRead(b, dev1, pool, pw)
}

func TestTransferRefusals(t *testing.T) {
	h := newHarness(t)
	a, b, c := newTestNode(t, "a"), newTestNode(t, "b"), newTestNode(t, "c")
	x := newTestNodeIn(t, "x", "org-2")
	h.put(dev1, pool, secretOf("p"), a)
	cases := []struct {
		name string
		dev  string
		from string
		to   []NodeKey
		want error
	}{
		{"unknown device", dev2, a.id, keys(b), ErrUnknownDevice},
		{"from not owner", dev1, c.id, keys(b), ErrNotOwner},
		{"no target", dev1, a.id, nil, ErrInvalidOwners},
		{"other org", dev1, a.id, keys(x), ErrWrongOrg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := h.v.Transfer(tc.dev, tc.from, tc.to); !errors.Is(err, tc.want) {
				t.Fatalf("Transfer: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := h.v.RevokeNode(c.id); err != nil {
		t.Fatal(err)
	}
	if _, err := h.v.Transfer(dev1, a.id, keys(c)); !errors.Is(err, ErrNodeRevoked) {
		t.Fatalf("transfer to a revoked node: %v", err)
	}
	if err := h.v.CancelTransfer(dev1); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("CancelTransfer without one: %v", err)
	}
	if err := h.v.CompleteTransfer(dev1, a.id, nil); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("CompleteTransfer without one: %v", err)
	}
}

// The uploaded envelopes must be exactly the ones needed.
func TestCompleteTransferChecksUploads(t *testing.T) {
	a, b, b2, c := newTestNode(t, "a"), newTestNode(t, "b"), newTestNode(t, "b2"), newTestNode(t, "c")
	pw := secretOf("pool")
	setup := func(t *testing.T) (*harness, ResealRequest, []*sealing.Envelope) {
		h := newHarness(t)
		h.put(dev1, pool, pw, a)
		h.put(dev1, web, secretOf("web"), a)
		req, err := h.v.Transfer(dev1, a.id, keys(b, b2))
		if err != nil {
			t.Fatal(err)
		}
		return h, req, a.reseal(t, req)
	}
	cases := []struct {
		name   string
		by     string
		mutate func([]*sealing.Envelope) []*sealing.Envelope
		want   error
	}{
		{"missing one", a.id, func(e []*sealing.Envelope) []*sealing.Envelope { return e[1:] }, ErrResealMismatch},
		{"duplicate", a.id, func(e []*sealing.Envelope) []*sealing.Envelope { return append(e[1:], e[1]) }, ErrResealMismatch},
		{"extra for a third node", a.id, func(e []*sealing.Envelope) []*sealing.Envelope {
			return append(e, sealFor(t, dev1, pool, pw, c)...)
		}, ErrResealMismatch},
		{"another device", a.id, func(e []*sealing.Envelope) []*sealing.Envelope {
			e[0] = sealFor(t, dev2, e[0].Purpose, pw, b)[0]
			return e
		}, ErrResealMismatch},
		{"sealed to a stale key", a.id, func(e []*sealing.Envelope) []*sealing.Envelope {
			stale := newTestNode(t, e[0].NodeID)
			e[0] = sealFor(t, dev1, e[0].Purpose, pw, stale)[0]
			return e
		}, ErrResealMismatch},
		{"malformed", a.id, func(e []*sealing.Envelope) []*sealing.Envelope { e[0].Enc = nil; return e }, ErrResealMismatch},
		{"by a non-owner", b.id, func(e []*sealing.Envelope) []*sealing.Envelope { return e }, ErrNotOwner},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, _, envs := setup(t)
			if err := h.v.CompleteTransfer(dev1, tc.by, tc.mutate(envs)); !errors.Is(err, tc.want) {
				t.Fatalf("CompleteTransfer: %v, want %v", err, tc.want)
			}
			// Nothing changed: still pending, A still reads, B does not.
			if st := h.status(dev1); st.State != StateTransferPending {
				t.Fatalf("state %s after a refused upload", st.State)
			}
			h.mustRead(a, dev1, pool, pw)
			h.mustNotRead(b, dev1, pool)
		})
	}
	t.Run("cancel", func(t *testing.T) {
		h, _, _ := setup(t)
		if err := h.v.CancelTransfer(dev1); err != nil {
			t.Fatal(err)
		}
		if st := h.status(dev1); st.State != StateActive || !slices.Equal(st.Owners, []string{"a"}) {
			t.Fatalf("after cancel %+v", st)
		}
		h.mustRead(a, dev1, pool, pw)
	})
}

// Revoking one node of a pair: its envelopes go, its devices' credentials are revocation-pending, the
// partner rotates them, and only then are they active.
func TestRevocationThenRotationByTrustedPartner(t *testing.T) {
	h := newBadgerHarness(t)
	a, a2, c := newTestNode(t, "a"), newTestNode(t, "a2"), newTestNode(t, "c")
	h.put(dev1, pool, secretOf("p1"), a, a2)
	h.put(dev1, web, secretOf("w1"), a, a2)
	h.put(dev2, pool, secretOf("p2"), c) // not a's: untouched

	h.clk.Advance(time.Minute)
	rep, err := h.v.RevokeNode(a.id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Devices, []string{dev1}) {
		t.Fatalf("report %+v", rep)
	}
	if _, err := h.v.Envelopes(a.id); !errors.Is(err, ErrNodeRevoked) {
		t.Fatalf("Envelopes of a revoked node: %v", err)
	}
	if _, err := h.v.Envelope(a.id, dev1, pool); !errors.Is(err, ErrNodeRevoked) {
		t.Fatalf("Envelope of a revoked node: %v", err)
	}
	st := h.status(dev1)
	if st.State != StateRevocationPending || !slices.Equal(st.Owners, []string{"a2"}) {
		t.Fatalf("status %+v", st)
	}
	for _, cs := range st.Credentials {
		if cs.State != StateRevocationPending || !slices.Equal(cs.RevokedReaders, []string{"a"}) ||
			!cs.PendingSince.Equal(t0.Add(time.Minute)) || cs.NewSecretStaged || cs.NeedsReentry ||
			!slices.Equal(cs.Holders, []string{"a2"}) {
			t.Fatalf("credential %+v", cs)
		}
	}
	if h.status(dev2).State != StateActive {
		t.Fatal("a device the revoked node never owned became pending")
	}
	pend, err := h.v.Pending()
	if err != nil || len(pend) != 1 || pend[0].DeviceID != dev1 {
		t.Fatalf("Pending = %+v, %v", pend, err)
	}
	// The revoked node may not rotate; the partner may, sealing to the remaining owners only.
	newPool := secretOf("p1-rotated")
	if err := h.v.CompleteRotation(dev1, pool, a.id, sealFor(t, dev1, pool, newPool, a2)); !errors.Is(err, ErrNodeRevoked) {
		t.Fatalf("rotation by the revoked node: %v", err)
	}
	if err := h.v.CompleteRotation(dev1, pool, a2.id, sealFor(t, dev1, pool, newPool, a2, a)); !errors.Is(err, ErrResealMismatch) {
		t.Fatalf("rotation sealing to the revoked node too: %v", err)
	}
	if err := h.v.CompleteRotation(dev1, pool, a2.id, sealFor(t, dev1, pool, newPool, a2)); err != nil {
		t.Fatal(err)
	}
	cs := h.credState(dev1, pool)
	if cs.State != StateActive || cs.Generation != 2 || cs.RevokedReaders != nil {
		t.Fatalf("after rotation %+v", cs)
	}
	h.mustRead(a2, dev1, pool, newPool)
	if h.status(dev1).State != StateRevocationPending {
		t.Fatal("device cleared while its login is still pending")
	}
	if err := h.v.CompleteRotation(dev1, web, a2.id, sealFor(t, dev1, web, secretOf("w1-rotated"), a2)); err != nil {
		t.Fatal(err)
	}
	if h.status(dev1).State != StateActive {
		t.Fatal("device still pending after every credential rotated")
	}
	if pend, _ := h.v.Pending(); len(pend) != 0 {
		t.Fatalf("Pending after rotation: %+v", pend)
	}
	// Idempotent: revoking again changes nothing now that the readers rotated.
	rep, err = h.v.RevokeNode(a.id)
	if err != nil || len(rep.Devices) != 0 {
		t.Fatalf("second RevokeNode: %+v, %v", rep, err)
	}
	if h.status(dev1).State != StateActive {
		t.Fatal("re-revoking reopened a rotated credential")
	}
}

// A node that handed a device over still knew its secret: revoking it later makes the new owner's
// credential revocation-pending.
func TestRevokingAFormerOwnerAfterTransfer(t *testing.T) {
	h := newHarness(t)
	a, b := newTestNode(t, "a"), newTestNode(t, "b")
	h.put(dev1, pool, secretOf("p"), a)
	req, err := h.v.Transfer(dev1, a.id, keys(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.v.CompleteTransfer(dev1, a.id, a.reseal(t, req)); err != nil {
		t.Fatal(err)
	}
	rep, err := h.v.RevokeNode(a.id)
	if err != nil || !slices.Equal(rep.Devices, []string{dev1}) {
		t.Fatalf("RevokeNode: %+v, %v", rep, err)
	}
	cs := h.credState(dev1, pool)
	if cs.State != StateRevocationPending || !slices.Equal(cs.RevokedReaders, []string{"a"}) {
		t.Fatalf("former owner's revocation: %+v", cs)
	}
	// But once B rotated before the revocation, A never read the current secret.
	h2 := newHarness(t)
	h2.put(dev1, pool, secretOf("p"), a)
	req, _ = h2.v.Transfer(dev1, a.id, keys(b))
	if err := h2.v.CompleteTransfer(dev1, a.id, a.reseal(t, req)); err != nil {
		t.Fatal(err)
	}
	if err := h2.v.CompleteRotation(dev1, pool, b.id, sealFor(t, dev1, pool, secretOf("new"), b)); err != nil {
		t.Fatal(err)
	}
	rep, err = h2.v.RevokeNode(a.id)
	if err != nil || len(rep.Devices) != 0 || h2.status(dev1).State != StateActive {
		t.Fatalf("revoking a node that never read the current secret: %+v, %v, %+v", rep, err, h2.status(dev1))
	}
}

// The sole owner revoked: nothing trusted holds the credential; the operator puts a new secret for the new
// owner (staged, still pending), and the new owner confirms it set it on the miner.
func TestSoleOwnerRevokedReentry(t *testing.T) {
	h := newHarness(t)
	a, b := newTestNode(t, "a"), newTestNode(t, "b")
	h.put(dev1, pool, secretOf("old"), a)
	h.put(dev1, web, secretOf("oldweb"), a)
	if _, err := h.v.RevokeNode(a.id); err != nil {
		t.Fatal(err)
	}
	st := h.status(dev1)
	if len(st.Owners) != 0 || !st.Credentials[0].NeedsReentry || len(st.Credentials[0].Holders) != 0 {
		t.Fatalf("after sole owner revoked %+v", st)
	}
	if err := h.v.CompleteRotation(dev1, pool, b.id, nil); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("rotation by a non-owner: %v", err)
	}
	pw := secretOf("new")
	h.put(dev1, pool, pw, b) // establishes B as owner
	cs := h.credState(dev1, pool)
	if cs.State != StateRevocationPending || !cs.NewSecretStaged || cs.Generation != 2 || cs.NeedsReentry {
		t.Fatalf("after staging Put %+v", cs)
	}
	h.mustRead(b, dev1, pool, pw)
	if err := h.v.CompleteRotation(dev1, web, b.id, nil); !errors.Is(err, ErrNothingStaged) {
		t.Fatalf("confirming with nothing staged: %v", err)
	}
	if err := h.v.CompleteRotation(dev1, pool, b.id, nil); err != nil {
		t.Fatal(err)
	}
	if cs := h.credState(dev1, pool); cs.State != StateActive || cs.Generation != 2 {
		t.Fatalf("after confirmation %+v", cs)
	}
	if cs := h.credState(dev1, web); cs.State != StateRevocationPending || !cs.NeedsReentry {
		t.Fatalf("untouched purpose %+v", cs)
	}
}

// Revocation during a transfer: a revoked target is dropped (the transfer cancelled if none is left);
// a revoked outgoing node's work passes to its pair partner.
func TestRevocationDuringTransfer(t *testing.T) {
	t.Run("target revoked", func(t *testing.T) {
		h := newHarness(t)
		a, b := newTestNode(t, "a"), newTestNode(t, "b")
		pw := secretOf("p")
		h.put(dev1, pool, pw, a)
		req, err := h.v.Transfer(dev1, a.id, keys(b))
		if err != nil {
			t.Fatal(err)
		}
		envs := a.reseal(t, req)
		rep, err := h.v.RevokeNode(b.id)
		if err != nil || !slices.Equal(rep.CancelledTransfers, []string{dev1}) {
			t.Fatalf("RevokeNode: %+v, %v", rep, err)
		}
		if err := h.v.CompleteTransfer(dev1, a.id, envs); !errors.Is(err, ErrNoTransfer) {
			t.Fatalf("completing a cancelled transfer: %v", err)
		}
		h.mustRead(a, dev1, pool, pw)
		if st := h.status(dev1); st.State != StateActive {
			t.Fatalf("b never read it, yet %+v", st)
		}
	})
	t.Run("outgoing node revoked", func(t *testing.T) {
		h := newHarness(t)
		a, a2, b := newTestNode(t, "a"), newTestNode(t, "a2"), newTestNode(t, "b")
		pw := secretOf("p")
		h.put(dev1, pool, pw, a, a2)
		req, err := h.v.Transfer(dev1, a.id, keys(b))
		if err != nil {
			t.Fatal(err)
		}
		envs := a.reseal(t, req)
		if _, err := h.v.RevokeNode(a.id); err != nil {
			t.Fatal(err)
		}
		if err := h.v.CompleteTransfer(dev1, a.id, envs); !errors.Is(err, ErrNodeRevoked) {
			t.Fatalf("upload by the revoked node: %v", err)
		}
		work, err := h.v.ResealWork(dev1, a2.id)
		if err != nil || len(work.Items) != 1 {
			t.Fatalf("ResealWork for the partner: %+v, %v", work, err)
		}
		if err := h.v.CompleteTransfer(dev1, a2.id, a2.reseal(t, work)); err != nil {
			t.Fatal(err)
		}
		h.mustRead(b, dev1, pool, pw)
		h.mustNotRead(a2, dev1, pool)
		// a read the secret b now holds: still pending until b rotates it.
		if cs := h.credState(dev1, pool); cs.State != StateRevocationPending {
			t.Fatalf("after transfer %+v", cs)
		}
		if err := h.v.CompleteRotation(dev1, pool, b.id, sealFor(t, dev1, pool, secretOf("r"), b)); err != nil {
			t.Fatal(err)
		}
		if st := h.status(dev1); st.State != StateActive {
			t.Fatalf("after rotation %+v", st)
		}
	})
	t.Run("sole outgoing node revoked", func(t *testing.T) {
		h := newHarness(t)
		a, b := newTestNode(t, "a"), newTestNode(t, "b")
		h.put(dev1, pool, secretOf("p"), a)
		if _, err := h.v.Transfer(dev1, a.id, keys(b)); err != nil {
			t.Fatal(err)
		}
		rep, err := h.v.RevokeNode(a.id)
		if err != nil || !slices.Equal(rep.CancelledTransfers, []string{dev1}) {
			t.Fatalf("RevokeNode: %+v, %v", rep, err)
		}
		st := h.status(dev1)
		if st.Transfer != nil || st.State != StateRevocationPending || !st.Credentials[0].NeedsReentry {
			t.Fatalf("after revocation %+v", st)
		}
	})
}

func TestRoutineRotationAndDelete(t *testing.T) {
	h := newHarness(t)
	a, a2 := newTestNode(t, "a"), newTestNode(t, "a2")
	h.put(dev1, web, secretOf("w"), a, a2)
	h.put(dev1, pool, secretOf("p"), a, a2)
	nw := secretOf("w2")
	if err := h.v.CompleteRotation(dev1, web, a.id, sealFor(t, dev1, web, nw, a)); !errors.Is(err, ErrResealMismatch) {
		t.Fatalf("rotation sealed to one of two owners: %v", err)
	}
	if err := h.v.CompleteRotation(dev1, web, a.id, sealFor(t, dev1, web, nw, a, a2)); err != nil {
		t.Fatal(err)
	}
	h.mustRead(a2, dev1, web, nw)
	if err := h.v.CompleteRotation(dev1, "pool-password/9", a.id, nil); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("unknown purpose: %v", err)
	}
	if err := h.v.Delete(dev1, web); err != nil {
		t.Fatal(err)
	}
	h.mustNotRead(a, dev1, web)
	if err := h.v.Delete(dev1, web); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("second delete: %v", err)
	}
	if err := h.v.Delete(dev1, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := h.v.Status(dev1); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("record outlived its last credential: %v", err)
	}
	if envs, err := h.v.Envelopes(a.id); err != nil || len(envs) != 0 {
		t.Fatalf("Envelopes after delete: %v, %v", envs, err)
	}
}

func TestConfig(t *testing.T) {
	if _, err := New(nil, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil store: %v", err)
	}
	if err := (Config{}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("zero config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// Nothing the vault logs holds a plaintext (the scan test checks the store).
func TestLogsCarryNoPlaintext(t *testing.T) {
	h := newHarness(t)
	a, b := newTestNode(t, "a"), newTestNode(t, "b")
	var secrets [][]byte
	for _, p := range []string{pool, web} {
		s := secretOf(p)
		secrets = append(secrets, s)
		h.put(dev1, p, s, a)
	}
	req, _ := h.v.Transfer(dev1, a.id, keys(b))
	_ = h.v.CompleteTransfer(dev1, a.id, a.reseal(t, req))
	_, _ = h.v.RevokeNode(a.id)
	s := secretOf("rot")
	secrets = append(secrets, s)
	_ = h.v.CompleteRotation(dev1, pool, b.id, sealFor(t, dev1, pool, s, b))
	logs := h.logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("no logs captured")
	}
	for _, s := range secrets {
		if bytes.Contains(logs, s) {
			t.Fatalf("logs contain plaintext %q", s)
		}
	}
}
