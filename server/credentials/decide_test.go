package credentials

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// fixture is a set of nodes and a clock for driving the pure decisions directly.
type fixture struct {
	t                 *testing.T
	a, a2, b, b2, zed *testNode
	rev               revokedSet
	now               time.Time
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, a: newTestNode(t, "a"), a2: newTestNode(t, "a2"), b: newTestNode(t, "b"),
		b2: newTestNode(t, "b2"), zed: newTestNode(t, "zed"), rev: revokedSet{}, now: t0}
}

// put is decidePut after sealing, as Vault.Put does it.
func (f *fixture) put(rec *DeviceRecord, purpose string, owners ...*testNode) (*DeviceRecord, error) {
	ks := keys(owners...)
	sortKeys(ks)
	var ns []*testNode
	for _, k := range ks {
		for _, o := range owners {
			if o.id == k.NodeID {
				ns = append(ns, o)
			}
		}
	}
	return decidePut(rec, org, dev1, purpose, ks, sealFor(f.t, dev1, purpose, secretOf(purpose), ns...), f.rev, f.now)
}

func (f *fixture) must(rec *DeviceRecord, err error) *DeviceRecord {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
	return rec
}

// resealBy plays node n uploading the envelopes the pending transfer needs from it.
func (f *fixture) resealBy(rec *DeviceRecord, n *testNode) []*sealing.Envelope {
	src, _ := findKey(rec.Owners, n.id)
	items, _ := resealItems(rec, src, rec.Transfer.To)
	return n.reseal(f.t, ResealRequest{DeviceID: rec.DeviceID, From: n.id, Items: items})
}

// summary renders a record's workflow state compactly: "<device state> owners=[..] <purpose>:<state>/g<gen>[+staged] holders=[..]".
func summary(rec *DeviceRecord) string {
	if rec == nil {
		return "none"
	}
	st := status(rec)
	var b strings.Builder
	fmt.Fprintf(&b, "%s owners=%v", st.State, st.Owners)
	if st.Transfer != nil {
		fmt.Fprintf(&b, " to=%v", st.Transfer.To)
	}
	for _, c := range st.Credentials {
		fmt.Fprintf(&b, " %s:%s/g%d", c.Purpose, c.State, c.Generation)
		if c.NewSecretStaged {
			b.WriteString("+staged")
		}
		fmt.Fprintf(&b, " holders=%v", c.Holders)
	}
	return b.String()
}

type step struct {
	name string
	// setup builds the starting record.
	setup func(f *fixture) *DeviceRecord
	// event is the request; it returns the record to store.
	event   func(f *fixture, rec *DeviceRecord) (*DeviceRecord, error)
	wantErr error
	// want is the summary after the event (the starting summary when it is refused).
	want string
}

func runSteps(t *testing.T, steps []step) {
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f := newFixture(t)
			rec := s.setup(f)
			before := summary(rec)
			frozen := rec.Clone()
			out, err := s.event(f, rec)
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("error %v, want %v", err, s.wantErr)
			}
			if !recordsEqual(rec, frozen) {
				t.Fatal("the decision modified its input record")
			}
			got := summary(out)
			if err != nil {
				got = before
			}
			if got != s.want {
				t.Fatalf("\n got %s\nwant %s", got, s.want)
			}
		})
	}
}

// Setups.
func activeA(f *fixture) *DeviceRecord     { return f.must(f.put(nil, pool, f.a)) }
func activePairA(f *fixture) *DeviceRecord { return f.must(f.put(nil, pool, f.a, f.a2)) }
func transferAtoB(f *fixture) *DeviceRecord {
	rec, _, err := decideTransfer(activeA(f), "a", keys(f.b), f.rev, f.now)
	return f.must(rec, err)
}
func transferPairAtoB(f *fixture) *DeviceRecord {
	rec, _, err := decideTransfer(activePairA(f), "a", keys(f.b), f.rev, f.now)
	return f.must(rec, err)
}
func revokedAofPair(f *fixture) *DeviceRecord {
	rec, _, _ := decideRevoke(activePairA(f), "a", f.now)
	f.rev["a"] = true
	return rec
}
func stagedAfterRevoke(f *fixture) *DeviceRecord { return f.must(f.put(revokedAofPair(f), pool, f.a2)) }

func transfer(from string, to func(*fixture) []NodeKey) func(*fixture, *DeviceRecord) (*DeviceRecord, error) {
	return func(f *fixture, rec *DeviceRecord) (*DeviceRecord, error) {
		out, _, err := decideTransfer(rec, from, to(f), f.rev, f.now)
		return out, err
	}
}

func revoke(node string) func(*fixture, *DeviceRecord) (*DeviceRecord, error) {
	return func(f *fixture, rec *DeviceRecord) (*DeviceRecord, error) {
		f.rev[node] = true
		out, _, _ := decideRevoke(rec, node, f.now)
		return out, nil
	}
}

func TestTransferStateMachine(t *testing.T) {
	toB := func(f *fixture) []NodeKey { return keys(f.b) }
	runSteps(t, []step{
		{"active: transfer from owner", activeA, transfer("a", toB), nil,
			"transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"active: transfer from non-owner", activeA, transfer("b", toB), ErrNotOwner,
			"active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"active: transfer from revoked owner", activeA, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			f.rev["a"] = true
			return transfer("a", toB)(f, r)
		}, ErrNodeRevoked, "active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"active: transfer to a revoked node", activeA, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			f.rev["b"] = true
			return transfer("a", toB)(f, r)
		}, ErrNodeRevoked, "active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"active pair: shrink needs no re-seal", activePairA, transfer("a", func(f *fixture) []NodeKey { return keys(f.a2) }), nil,
			"active owners=[a2] pool-password/0:active/g1 holders=[a2]"},
		{"active: complete without transfer", activeA, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCompleteTransfer(r, "a", nil, f.rev, f.now)
		}, ErrNoTransfer, "active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"active: cancel without transfer", activeA, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCancelTransfer(r, f.now)
		}, ErrNoTransfer, "active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"pending: second transfer", transferAtoB, transfer("a", toB), ErrTransferPending,
			"transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"pending: upload completes", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCompleteTransfer(r, "a", f.resealBy(r, f.a), f.rev, f.now)
		}, nil, "active owners=[b] pool-password/0:active/g1 holders=[b]"},
		{"pending: empty upload", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCompleteTransfer(r, "a", nil, f.rev, f.now)
		}, ErrResealMismatch, "transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"pending: upload by the target", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCompleteTransfer(r, "b", f.resealBy(r, f.a), f.rev, f.now)
		}, ErrNotOwner, "transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"pending: cancel", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCancelTransfer(r, f.now)
		}, nil, "active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"pending: put refused", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return f.put(r, pool, f.a)
		}, ErrTransferPending, "transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"pending: rotation refused", transferAtoB, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideRotation(r, pool, "a", sealFor(f.t, dev1, pool, secretOf("r"), f.a), f.rev, f.now)
		}, ErrTransferPending, "transfer-pending owners=[a] to=[b] pool-password/0:active/g1 holders=[a]"},
		{"pending: target revoked cancels", transferAtoB, revoke("b"), nil,
			"active owners=[a] pool-password/0:active/g1 holders=[a]"},
		{"pending: sole source revoked cancels", transferAtoB, revoke("a"), nil,
			"revocation-pending owners=[] pool-password/0:revocation-pending/g1 holders=[]"},
		{"pending: source revoked, partner left", transferPairAtoB, revoke("a"), nil,
			"transfer-pending owners=[a2] to=[b] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"pending, source revoked: partner completes", func(f *fixture) *DeviceRecord {
			rec, _, _ := decideRevoke(transferPairAtoB(f), "a", f.now)
			f.rev["a"] = true
			return rec
		}, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return decideCompleteTransfer(r, "a2", f.resealBy(r, f.a2), f.rev, f.now)
		}, nil, "revocation-pending owners=[b] pool-password/0:revocation-pending/g1 holders=[b]"},
	})
}

func TestRevocationStateMachine(t *testing.T) {
	rotate := func(by string, to func(*fixture) []*testNode) func(*fixture, *DeviceRecord) (*DeviceRecord, error) {
		return func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			var envs []*sealing.Envelope
			if to != nil {
				envs = sealFor(f.t, dev1, pool, secretOf("rot"), to(f)...)
			}
			return decideRotation(r, pool, by, envs, f.rev, f.now)
		}
	}
	a2 := func(f *fixture) []*testNode { return []*testNode{f.a2} }
	runSteps(t, []step{
		{"active pair: revoke a", activePairA, revoke("a"), nil,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"active: revoke a stranger", activePairA, revoke("zed"), nil,
			"active owners=[a a2] pool-password/0:active/g1 holders=[a a2]"},
		{"pending: revoke again (idempotent)", revokedAofPair, revoke("a"), nil,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"pending: put stages a new secret", revokedAofPair, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return f.put(r, pool, f.a2)
		}, nil, "revocation-pending owners=[a2] pool-password/0:revocation-pending/g2+staged holders=[a2]"},
		{"pending: put to the revoked node", revokedAofPair, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			return f.put(r, pool, f.a, f.a2)
		}, ErrNodeRevoked, "revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"pending: confirm without a staged secret", revokedAofPair, rotate("a2", nil), ErrNothingStaged,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"staged: confirm by trusted owner", stagedAfterRevoke, rotate("a2", nil), nil,
			"active owners=[a2] pool-password/0:active/g2 holders=[a2]"},
		{"staged: confirm by revoked node", stagedAfterRevoke, rotate("a", nil), ErrNodeRevoked,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g2+staged holders=[a2]"},
		{"pending: rotation by trusted owner", revokedAofPair, rotate("a2", a2), nil,
			"active owners=[a2] pool-password/0:active/g2 holders=[a2]"},
		{"pending: rotation by revoked node", revokedAofPair, rotate("a", a2), ErrNodeRevoked,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"pending: rotation sealed to the revoked node too", revokedAofPair, rotate("a2", func(f *fixture) []*testNode {
			return []*testNode{f.a, f.a2}
		}), ErrResealMismatch, "revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"pending: rotation by a non-owner", revokedAofPair, rotate("b", a2), ErrNotOwner,
			"revocation-pending owners=[a2] pool-password/0:revocation-pending/g1 holders=[a2]"},
		{"active: confirm without a staged secret", activePairA, rotate("a", nil), ErrNothingStaged,
			"active owners=[a a2] pool-password/0:active/g1 holders=[a a2]"},
		{"active: routine rotation", activePairA, rotate("a", func(f *fixture) []*testNode { return []*testNode{f.a, f.a2} }), nil,
			"active owners=[a a2] pool-password/0:active/g2 holders=[a a2]"},
		{"owner revoked, sweep not yet applied: rotation refused", activePairA, func(f *fixture, r *DeviceRecord) (*DeviceRecord, error) {
			f.rev["a"] = true
			return rotate("a2", func(f *fixture) []*testNode { return []*testNode{f.a, f.a2} })(f, r)
		}, ErrNodeRevoked, "active owners=[a a2] pool-password/0:active/g1 holders=[a a2]"},
		{"transferred away: revoke the former owner", func(f *fixture) *DeviceRecord {
			r := transferAtoB(f)
			return f.must(decideCompleteTransfer(r, "a", f.resealBy(r, f.a), f.rev, f.now))
		}, revoke("a"), nil, "revocation-pending owners=[b] pool-password/0:revocation-pending/g1 holders=[b]"},
		{"no record: revoke", func(*fixture) *DeviceRecord { return nil }, revoke("a"), nil, "none"},
	})
}

// decideRevoke reports changed only when something changed, and stamps PendingSince once.
func TestRevokeIdempotence(t *testing.T) {
	f := newFixture(t)
	rec := activePairA(f)
	r1, changed, _ := decideRevoke(rec, "a", t0)
	if !changed {
		t.Fatal("first revoke reported no change")
	}
	r2, changed, _ := decideRevoke(r1, "a", t0.Add(time.Hour))
	if changed || !recordsEqual(r1, r2) {
		t.Fatal("second revoke changed the record")
	}
	r3, changed, _ := decideRevoke(r2, "a2", t0.Add(2*time.Hour))
	if !changed || !r3.Credentials[0].PendingSince.Equal(t0) {
		t.Fatalf("pending since moved: %v", r3.Credentials[0].PendingSince)
	}
	if got := r3.Credentials[0].RevokedReaders; len(got) != 2 {
		t.Fatalf("revoked readers %v", got)
	}
}
