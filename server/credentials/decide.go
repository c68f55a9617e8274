package credentials

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/sealing"
)

// The workflow's decisions: pure functions from a stored record (nil when absent) and the request to the
// record to store, with time and the revoked set passed in. They never see plaintext: sealing happens before
// (Put), or on a node (transfer, rotation). Each returns a new record and leaves its input untouched.
//
//	credential (one per device and purpose):
//
//	  (none) ─Put─▶ active ──RevokeNode(any reader of the current generation)──▶ revocation-pending
//	                 │ ▲                                                          │  │ Put: new secret
//	                 └─┘ Put, CompleteRotation(envs): new generation               │  ▼ staged, still pending
//	                   ▲                                                          │  revocation-pending+staged
//	                   └── CompleteRotation(by a trusted owner: envs, or none ◀───┴──┘ once staged)
//
//	device:
//
//	  idle ─Transfer(from, to)─▶ transfer-pending ─CompleteTransfer(by, envs)─▶ idle, owners = to,
//	                               │                                            other envelopes deleted
//	                               └─ CancelTransfer, or RevokeNode leaving no target or no owner ─▶ idle
//
// A device is transfer-pending as a whole; each credential (purpose) is active or revocation-pending on
// its own, and keeps that state across a transfer.

// revokedSet answers "is this node revoked", read inside the store transaction.
type revokedSet map[string]bool

func (r revokedSet) firstOf(ids ...string) (string, bool) {
	for _, id := range ids {
		if r[id] {
			return id, true
		}
	}
	return "", false
}

func ownerIDs(ks []NodeKey) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.NodeID
	}
	return ids
}

func findKey(ks []NodeKey, id string) (NodeKey, bool) {
	for _, k := range ks {
		if k.NodeID == id {
			return k, true
		}
	}
	return NodeKey{}, false
}

func sameOwners(a, b []NodeKey) bool {
	return slices.EqualFunc(a, b, func(x, y NodeKey) bool { return x.equal(y) })
}

func (r *DeviceRecord) credential(purpose string) (*Credential, int) {
	for i := range r.Credentials {
		if r.Credentials[i].Purpose == purpose {
			return &r.Credentials[i], i
		}
	}
	return nil, -1
}

func (c *Credential) envelopeFor(node string) *sealing.Envelope {
	for _, e := range c.Envelopes {
		if e.NodeID == node {
			return e
		}
	}
	return nil
}

// currentEnvelopeFor returns k's envelope if it is sealed to k's current key.
func (c *Credential) currentEnvelopeFor(k NodeKey) *sealing.Envelope {
	if e := c.envelopeFor(k.NodeID); e != nil && e.KeyID == k.KeyID() {
		return e
	}
	return nil
}

func addSorted(ss []string, s ...string) []string {
	ss = append(ss, s...)
	slices.Sort(ss)
	return slices.Compact(ss)
}

// decidePut stores a new generation of (device, purpose), sealed by the caller to owners (envs, one each).
func decidePut(rec *DeviceRecord, orgID, deviceID, purpose string, owners []NodeKey, envs []*sealing.Envelope,
	revoked revokedSet, now time.Time) (*DeviceRecord, error) {
	if id, ok := revoked.firstOf(ownerIDs(owners)...); ok {
		return nil, fmt.Errorf("put %s/%s: owner %q: %w", deviceID, purpose, id, ErrNodeRevoked)
	}
	if rec == nil {
		rec = &DeviceRecord{DeviceID: deviceID, OrgID: orgID}
	} else {
		rec = rec.Clone()
	}
	switch {
	case rec.OrgID != orgID:
		return nil, fmt.Errorf("put %s/%s: device belongs to org %q, not %q: %w", deviceID, purpose, rec.OrgID, orgID, ErrWrongOrg)
	case rec.Transfer != nil:
		return nil, fmt.Errorf("put %s/%s: transfer from %q in progress: %w", deviceID, purpose, rec.Transfer.From, ErrTransferPending)
	case len(rec.Owners) > 0 && !sameOwners(rec.Owners, owners):
		return nil, fmt.Errorf("put %s/%s: device is owned by %v (with their current keys), not %v; change owners with a transfer: %w",
			deviceID, purpose, ownerIDs(rec.Owners), ownerIDs(owners), ErrOwnersMismatch)
	}
	if len(rec.Owners) == 0 {
		rec.Owners = cloneKeys(owners)
	}
	envs = cloneEnvs(envs)
	sortEnvs(envs)
	c, _ := rec.credential(purpose)
	if c == nil {
		rec.Credentials = append(rec.Credentials, Credential{Purpose: purpose})
		slices.SortFunc(rec.Credentials, func(a, b Credential) int { return strings.Compare(a.Purpose, b.Purpose) })
		c, _ = rec.credential(purpose)
	}
	c.Generation++
	c.Envelopes = envs
	c.Readers = ownerIDs(rec.Owners)
	c.UpdatedAt = now
	// A revocation-pending credential stays pending: the new secret is staged, and a trusted node confirms
	// with CompleteRotation once it is set on the miner.
	rec.UpdatedAt = now
	return rec, nil
}

// resealItems lists the envelopes source can re-seal for the targets, and the purposes it cannot (it holds
// no current envelope for them) although a target lacks one.
func resealItems(rec *DeviceRecord, source NodeKey, targets []NodeKey) (items []ResealItem, unsealable []string) {
	for i := range rec.Credentials {
		c := &rec.Credentials[i]
		var missing []NodeKey
		for _, t := range targets {
			if c.currentEnvelopeFor(t) == nil {
				missing = append(missing, t)
			}
		}
		if len(missing) == 0 {
			continue
		}
		src := c.currentEnvelopeFor(source)
		if src == nil {
			unsealable = append(unsealable, c.Purpose)
			continue
		}
		for _, t := range missing {
			items = append(items, ResealItem{Purpose: c.Purpose, Source: src.Clone(), To: t.clone()})
		}
	}
	return items, unsealable
}

// decideTransfer starts moving the device to the owner set to; from must be a trusted owner, and re-seals.
// When nothing needs re-sealing (to only drops owners, say) the transfer completes at once (Done).
func decideTransfer(rec *DeviceRecord, from string, to []NodeKey, revoked revokedSet, now time.Time) (*DeviceRecord, ResealRequest, error) {
	if rec == nil {
		return nil, ResealRequest{}, fmt.Errorf("transfer: %w", ErrUnknownDevice)
	}
	dev := rec.DeviceID
	if rec.Transfer != nil {
		return nil, ResealRequest{}, fmt.Errorf("transfer %s: transfer from %q started %s in progress: %w",
			dev, rec.Transfer.From, rec.Transfer.StartedAt.Format(time.RFC3339), ErrTransferPending)
	}
	if revoked[from] {
		return nil, ResealRequest{}, fmt.Errorf("transfer %s: outgoing node %q: %w", dev, from, ErrNodeRevoked)
	}
	src, ok := findKey(rec.Owners, from)
	if !ok {
		return nil, ResealRequest{}, fmt.Errorf("transfer %s: %q is not among its owners %v: %w", dev, from, ownerIDs(rec.Owners), ErrNotOwner)
	}
	if id, ok := revoked.firstOf(ownerIDs(to)...); ok {
		return nil, ResealRequest{}, fmt.Errorf("transfer %s: new owner %q: %w", dev, id, ErrNodeRevoked)
	}
	for _, t := range to {
		if t.OrgID != rec.OrgID {
			return nil, ResealRequest{}, fmt.Errorf("transfer %s: node %q is in org %q, the device in %q: %w", dev, t.NodeID, t.OrgID, rec.OrgID, ErrWrongOrg)
		}
	}
	items, unsealable := resealItems(rec, src, to)
	req := ResealRequest{DeviceID: dev, From: from, Items: items, Unsealable: unsealable}
	out := rec.Clone()
	out.UpdatedAt = now
	if len(items) == 0 {
		finishTransfer(out, to, nil, now)
		req.Done = true
		return out, req, nil
	}
	out.Transfer = &Transfer{From: from, To: cloneKeys(to), StartedAt: now}
	return out, req, nil
}

// finishTransfer makes to the owner set, adds the re-sealed envelopes, and deletes every envelope not for
// a new owner's current key.
func finishTransfer(rec *DeviceRecord, to []NodeKey, envs []*sealing.Envelope, now time.Time) {
	for i := range rec.Credentials {
		c := &rec.Credentials[i]
		var keep []*sealing.Envelope
		for _, e := range c.Envelopes {
			if k, ok := findKey(to, e.NodeID); ok && e.KeyID == k.KeyID() {
				keep = append(keep, e)
			}
		}
		for _, e := range envs {
			if e.Purpose == c.Purpose {
				keep = append(keep, e.Clone())
				c.Readers = addSorted(c.Readers, e.NodeID)
			}
		}
		sortEnvs(keep)
		if len(keep) != len(c.Envelopes) || !slices.EqualFunc(keep, c.Envelopes, (*sealing.Envelope).Equal) {
			c.UpdatedAt = now
		}
		c.Envelopes = keep
	}
	rec.Owners = cloneKeys(to)
	rec.Transfer = nil
	rec.UpdatedAt = now
}

// decideCompleteTransfer checks the envelopes by uploaded against exactly what the transfer needs from it
// and finishes the transfer.
func decideCompleteTransfer(rec *DeviceRecord, by string, envs []*sealing.Envelope, revoked revokedSet, now time.Time) (*DeviceRecord, error) {
	if rec == nil {
		return nil, fmt.Errorf("complete transfer: %w", ErrUnknownDevice)
	}
	dev := rec.DeviceID
	if rec.Transfer == nil {
		return nil, fmt.Errorf("complete transfer %s: %w", dev, ErrNoTransfer)
	}
	if revoked[by] {
		return nil, fmt.Errorf("complete transfer %s: uploading node %q: %w", dev, by, ErrNodeRevoked)
	}
	src, ok := findKey(rec.Owners, by)
	if !ok {
		return nil, fmt.Errorf("complete transfer %s: %q is not among its owners %v: %w", dev, by, ownerIDs(rec.Owners), ErrNotOwner)
	}
	to := rec.Transfer.To
	if id, ok := revoked.firstOf(ownerIDs(to)...); ok {
		return nil, fmt.Errorf("complete transfer %s: new owner %q: %w", dev, id, ErrNodeRevoked)
	}
	items, _ := resealItems(rec, src, to)
	if err := matchUploads(dev, envs, items); err != nil {
		return nil, fmt.Errorf("complete transfer %s from %q: %w", dev, by, err)
	}
	out := rec.Clone()
	finishTransfer(out, to, envs, now)
	return out, nil
}

// matchUploads checks that envs are exactly one envelope per item: right device, purpose, node and key.
func matchUploads(dev string, envs []*sealing.Envelope, items []ResealItem) error {
	type slot struct{ purpose, node string }
	want := make(map[slot]NodeKey, len(items))
	for _, it := range items {
		want[slot{it.Purpose, it.To.NodeID}] = it.To
	}
	seen := make(map[slot]bool, len(envs))
	for _, e := range envs {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("%w: %w", err, ErrResealMismatch)
		}
		s := slot{e.Purpose, e.NodeID}
		k, ok := want[s]
		switch {
		case e.DeviceID != dev:
			return fmt.Errorf("envelope for device %q: %w", e.DeviceID, ErrResealMismatch)
		case !ok:
			return fmt.Errorf("envelope for node %q purpose %q is not needed: %w", e.NodeID, e.Purpose, ErrResealMismatch)
		case seen[s]:
			return fmt.Errorf("two envelopes for node %q purpose %q: %w", e.NodeID, e.Purpose, ErrResealMismatch)
		case e.KeyID != k.KeyID():
			return fmt.Errorf("envelope for node %q purpose %q sealed to key %s, the node's key is %s: %w",
				e.NodeID, e.Purpose, e.KeyID, k.KeyID(), ErrResealMismatch)
		}
		seen[s] = true
	}
	if len(seen) != len(want) {
		var missing []string
		for s := range want {
			if !seen[s] {
				missing = append(missing, s.node+"/"+s.purpose)
			}
		}
		slices.Sort(missing)
		return fmt.Errorf("missing envelopes %v: %w", missing, ErrResealMismatch)
	}
	return nil
}

// decideCancelTransfer drops a transfer in progress; nothing was deleted, so the old owners keep theirs.
func decideCancelTransfer(rec *DeviceRecord, now time.Time) (*DeviceRecord, error) {
	if rec == nil {
		return nil, fmt.Errorf("cancel transfer: %w", ErrUnknownDevice)
	}
	if rec.Transfer == nil {
		return nil, fmt.Errorf("cancel transfer %s: %w", rec.DeviceID, ErrNoTransfer)
	}
	out := rec.Clone()
	out.Transfer = nil
	out.UpdatedAt = now
	return out, nil
}

// decideRevoke applies a node's revocation to one device: the node loses ownership and its envelopes, and
// every credential it could read (as an owner, a holder, or a reader of the current generation) becomes
// revocation-pending. A transfer the node was a target of drops it; one that can no longer complete (no
// target, or no owner left) is cancelled. changed is false when there was nothing to do (idempotent).
func decideRevoke(rec *DeviceRecord, node string, now time.Time) (out *DeviceRecord, changed, cancelled bool) {
	if rec == nil || !slices.Contains(rec.Nodes(), node) {
		return rec, false, false
	}
	out = rec.Clone()
	_, wasOwner := findKey(out.Owners, node)
	out.Owners = slices.DeleteFunc(out.Owners, func(k NodeKey) bool { return k.NodeID == node })
	for i := range out.Credentials {
		c := &out.Credentials[i]
		could := wasOwner || slices.Contains(c.Readers, node) || c.envelopeFor(node) != nil
		c.Envelopes = slices.DeleteFunc(c.Envelopes, func(e *sealing.Envelope) bool { return e.NodeID == node })
		if !could {
			continue
		}
		if !c.RevocationPending {
			c.RevocationPending = true
			c.PendingSince = now
		}
		c.RevokedReaders = addSorted(c.RevokedReaders, node)
		c.RevokedGeneration = max(c.RevokedGeneration, c.Generation)
		c.Readers = addSorted(c.Readers, node)
	}
	if t := out.Transfer; t != nil {
		t.To = slices.DeleteFunc(t.To, func(k NodeKey) bool { return k.NodeID == node })
		if len(t.To) == 0 || len(out.Owners) == 0 {
			out.Transfer = nil
			cancelled = true
		}
	}
	changed = !recordsEqual(rec, out)
	if changed {
		out.UpdatedAt = now
	}
	return out, changed, cancelled
}

// decideRotation stores the secret a trusted owner rotated (envs: one envelope per owner), or, with no envs,
// confirms that a secret staged by Put after the revocation is now set on the miner. Either clears the
// credential's revocation-pending state.
func decideRotation(rec *DeviceRecord, purpose, by string, envs []*sealing.Envelope, revoked revokedSet, now time.Time) (*DeviceRecord, error) {
	if rec == nil {
		return nil, fmt.Errorf("complete rotation: %w", ErrUnknownDevice)
	}
	dev := rec.DeviceID
	c, _ := rec.credential(purpose)
	switch {
	case c == nil:
		return nil, fmt.Errorf("complete rotation %s/%s: %w", dev, purpose, ErrUnknownCredential)
	case rec.Transfer != nil:
		return nil, fmt.Errorf("complete rotation %s/%s: transfer from %q in progress: %w", dev, purpose, rec.Transfer.From, ErrTransferPending)
	case revoked[by]:
		return nil, fmt.Errorf("complete rotation %s/%s: node %q: %w", dev, purpose, by, ErrNodeRevoked)
	}
	if _, ok := findKey(rec.Owners, by); !ok {
		return nil, fmt.Errorf("complete rotation %s/%s: %q is not among its owners %v: %w", dev, purpose, by, ownerIDs(rec.Owners), ErrNotOwner)
	}
	if id, ok := revoked.firstOf(ownerIDs(rec.Owners)...); ok {
		return nil, fmt.Errorf("complete rotation %s/%s: owner %q was revoked, its revocation is still being applied: %w", dev, purpose, id, ErrNodeRevoked)
	}
	out := rec.Clone()
	oc, _ := out.credential(purpose)
	if len(envs) == 0 {
		if !oc.RevocationPending || oc.Generation <= oc.RevokedGeneration {
			return nil, fmt.Errorf("complete rotation %s/%s by %q without envelopes: %w", dev, purpose, by, ErrNothingStaged)
		}
	} else {
		items := make([]ResealItem, len(out.Owners))
		for i, k := range out.Owners {
			items[i] = ResealItem{Purpose: purpose, To: k}
		}
		if err := matchUploads(dev, envs, items); err != nil {
			return nil, fmt.Errorf("complete rotation %s/%s by %q: %w", dev, purpose, by, err)
		}
		envs = cloneEnvs(envs)
		sortEnvs(envs)
		oc.Generation++
		oc.Envelopes = envs
		oc.Readers = ownerIDs(out.Owners)
	}
	oc.RevocationPending = false
	oc.PendingSince = time.Time{}
	oc.RevokedReaders = nil
	oc.RevokedGeneration = 0
	oc.UpdatedAt = now
	out.UpdatedAt = now
	return out, nil
}

// decideDelete removes one credential; the record goes (nil) with its last credential.
func decideDelete(rec *DeviceRecord, purpose string, now time.Time) (*DeviceRecord, error) {
	if rec == nil {
		return nil, fmt.Errorf("delete: %w", ErrUnknownDevice)
	}
	_, i := rec.credential(purpose)
	if i < 0 {
		return nil, fmt.Errorf("delete %s/%s: %w", rec.DeviceID, purpose, ErrUnknownCredential)
	}
	out := rec.Clone()
	out.Credentials = slices.Delete(out.Credentials, i, i+1)
	if len(out.Credentials) == 0 {
		return nil, nil
	}
	out.UpdatedAt = now
	return out, nil
}

// status is the API view of a record.
func status(rec *DeviceRecord) Status {
	st := Status{DeviceID: rec.DeviceID, OrgID: rec.OrgID, State: StateActive, Owners: ownerIDs(rec.Owners)}
	for _, c := range rec.Credentials {
		cs := CredentialStatus{
			Purpose:    c.Purpose,
			State:      StateActive,
			Generation: c.Generation,
			UpdatedAt:  c.UpdatedAt,
		}
		for _, e := range c.Envelopes {
			cs.Holders = append(cs.Holders, e.NodeID)
		}
		trusted := false
		for _, o := range rec.Owners {
			if c.currentEnvelopeFor(o) != nil {
				trusted = true
			}
		}
		cs.NeedsReentry = !trusted
		if c.RevocationPending {
			cs.State = StateRevocationPending
			cs.PendingSince = c.PendingSince
			cs.RevokedReaders = slices.Clone(c.RevokedReaders)
			cs.NewSecretStaged = c.Generation > c.RevokedGeneration
			st.State = StateRevocationPending
		}
		st.Credentials = append(st.Credentials, cs)
	}
	if t := rec.Transfer; t != nil {
		st.State = StateTransferPending
		missing := 0
		for _, c := range rec.Credentials {
			for _, k := range t.To {
				if c.currentEnvelopeFor(k) == nil {
					missing++
				}
			}
		}
		st.Transfer = &TransferStatus{From: t.From, To: ownerIDs(t.To), StartedAt: t.StartedAt, Outstanding: missing}
	}
	return st
}

func recordsEqual(a, b *DeviceRecord) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.DeviceID != b.DeviceID || a.OrgID != b.OrgID || !sameOwners(a.Owners, b.Owners) ||
		len(a.Credentials) != len(b.Credentials) || (a.Transfer == nil) != (b.Transfer == nil) {
		return false
	}
	if a.Transfer != nil && (a.Transfer.From != b.Transfer.From || !sameOwners(a.Transfer.To, b.Transfer.To) ||
		!a.Transfer.StartedAt.Equal(b.Transfer.StartedAt)) {
		return false
	}
	for i := range a.Credentials {
		x, y := &a.Credentials[i], &b.Credentials[i]
		if x.Purpose != y.Purpose || x.Generation != y.Generation || x.RevocationPending != y.RevocationPending ||
			!x.PendingSince.Equal(y.PendingSince) || x.RevokedGeneration != y.RevokedGeneration ||
			!slices.Equal(x.Readers, y.Readers) || !slices.Equal(x.RevokedReaders, y.RevokedReaders) ||
			!slices.EqualFunc(x.Envelopes, y.Envelopes, (*sealing.Envelope).Equal) {
			return false
		}
	}
	return true
}
