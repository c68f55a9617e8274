package signing

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// DefaultClockSkew is how far a node's clock may lag the cloud's before a freshly announced key (valid from
// the cloud's "now") is refused as not yet valid. It widens only the validity start, never retirement.
const DefaultClockSkew = time.Minute

// KeyringOption configures a Keyring.
type KeyringOption func(*Keyring)

// WithClockSkew sets the tolerance on key validity starts (default DefaultClockSkew; negative means 0).
func WithClockSkew(d time.Duration) KeyringOption {
	return func(k *Keyring) { k.skew = max(d, 0) }
}

// Keyring is a node's trust store of its org's command-issuance public keys.
//
// A command is accepted only if its key id belongs to the keyring's org, is not revoked, is known, is past
// its validity start (minus the clock-skew tolerance), is before its retirement, and the signature verifies.
// New keys arrive only through ApplyAnnouncement, revocations only through ApplyRevocation, both inside
// commands signed by a key already trusted. A revoked key id stays refused forever.
type Keyring struct {
	mu      sync.RWMutex
	orgID   string
	skew    time.Duration
	keys    map[string]*pb.CommandKey // trusted (never revoked) keys; owned clones
	revoked map[string]*pb.CommandKey // revoked key ids; the record keeps what was known of the key
}

// NewKeyring returns the trust store for orgID holding initial, which is either the command_keys of the
// EnrollResponse or a previous Snapshot (restoring is the same call). Keys flagged revoked are recorded as
// revoked forever. Every key must belong to orgID. A key with valid_from_unix_ms 0 is valid from the start.
func NewKeyring(orgID string, initial []*pb.CommandKey, opts ...KeyringOption) (*Keyring, error) {
	if orgID == "" {
		return nil, fmt.Errorf("new keyring: %w", ErrEmptyOrg)
	}
	k := &Keyring{
		orgID:   orgID,
		skew:    DefaultClockSkew,
		keys:    make(map[string]*pb.CommandKey),
		revoked: make(map[string]*pb.CommandKey),
	}
	for _, o := range opts {
		o(k)
	}
	for i, ck := range initial {
		if err := k.addInitial(ck); err != nil {
			return nil, fmt.Errorf("new keyring for org %q: key %d: %w", orgID, i, err)
		}
	}
	return k, nil
}

func (k *Keyring) addInitial(ck *pb.CommandKey) error {
	if ck == nil {
		return fmt.Errorf("nil key: %w", ErrMalformedKey)
	}
	id := ck.GetKeyId()
	if ck.GetOrgId() != k.orgID {
		return fmt.Errorf("key %q has org %q, not %q: %w", id, ck.GetOrgId(), k.orgID, ErrWrongOrg)
	}
	if err := checkKeyIDOrg(id, k.orgID); err != nil {
		return err
	}
	if ck.GetRevoked() {
		// A revocation record may carry no key material (a revoked id the node never trusted).
		if prev, ok := k.keys[id]; ok {
			delete(k.keys, id)
			k.revoked[id] = prev
		}
		if _, ok := k.revoked[id]; !ok {
			k.revoked[id] = proto.Clone(ck).(*pb.CommandKey)
		}
		k.revoked[id].Revoked = true
		return nil
	}
	if len(ck.GetPublicKey()) != ed25519.PublicKeySize {
		return fmt.Errorf("key %q: public key is %d bytes, want %d: %w", id, len(ck.GetPublicKey()), ed25519.PublicKeySize, ErrMalformedKey)
	}
	if _, ok := k.revoked[id]; ok {
		return nil // revoked wins, whatever the order of the records
	}
	if prev, ok := k.keys[id]; ok {
		if !bytes.Equal(prev.GetPublicKey(), ck.GetPublicKey()) {
			return fmt.Errorf("key %q listed twice: %w", id, ErrKeyConflict)
		}
		prev.RetireAfterUnixMs = earliestRetirement(prev.GetRetireAfterUnixMs(), ck.GetRetireAfterUnixMs())
		return nil
	}
	k.keys[id] = proto.Clone(ck).(*pb.CommandKey)
	return nil
}

// OrgID is the org whose keys this keyring trusts.
func (k *Keyring) OrgID() string { return k.orgID }

// Verify checks that cmd is signed by a key this keyring trusts at now. It checks nothing else: the node id,
// sequence and lease epoch are the CommandGate's to check (they are covered by the signature, so they cannot
// have been altered after signing). Errors wrap ErrMalformedCommand, ErrWrongOrg, ErrRevokedKey,
// ErrUnknownKey, ErrKeyNotYetValid, ErrKeyRetired or ErrBadSignature.
func (k *Keyring) Verify(cmd *pb.ControlCommand, now time.Time) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.verifyLocked(cmd, now)
}

func (k *Keyring) verifyLocked(cmd *pb.ControlCommand, now time.Time) error {
	if cmd == nil {
		return fmt.Errorf("verify: nil command: %w", ErrMalformedCommand)
	}
	id := cmd.GetKeyId()
	if id == "" {
		return fmt.Errorf("verify command seq %d: no key id: %w", cmd.GetMonotonicSeq(), ErrUnknownKey)
	}
	if org, ok := KeyIDOrg(id); ok && org != k.orgID {
		return fmt.Errorf("verify command seq %d: key %q belongs to org %q, this node trusts only %q: %w",
			cmd.GetMonotonicSeq(), id, org, k.orgID, ErrWrongOrg)
	}
	if _, ok := k.revoked[id]; ok {
		return fmt.Errorf("verify command seq %d: key %q: %w", cmd.GetMonotonicSeq(), id, ErrRevokedKey)
	}
	key, ok := k.keys[id]
	if !ok {
		return fmt.Errorf("verify command seq %d: key %q: %w", cmd.GetMonotonicSeq(), id, ErrUnknownKey)
	}
	if from := key.GetValidFromUnixMs(); from > 0 && now.Add(k.skew).Before(time.UnixMilli(from)) {
		return fmt.Errorf("verify command seq %d: key %q valid from %s, now %s: %w",
			cmd.GetMonotonicSeq(), id, time.UnixMilli(from).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrKeyNotYetValid)
	}
	if ra := key.GetRetireAfterUnixMs(); ra > 0 && !now.Before(time.UnixMilli(ra)) {
		return fmt.Errorf("verify command seq %d: key %q retired at %s: %w",
			cmd.GetMonotonicSeq(), id, time.UnixMilli(ra).UTC().Format(time.RFC3339), ErrKeyRetired)
	}
	return Verify(key.GetPublicKey(), cmd)
}

// carriedPayload decodes the CommandPayload a command carries.
func carriedPayload(cmd *pb.ControlCommand) (*pb.CommandPayload, error) {
	var p pb.CommandPayload
	if err := proto.Unmarshal(cmd.GetPayload(), &p); err != nil {
		return nil, fmt.Errorf("decode payload of command seq %d: %v: %w", cmd.GetMonotonicSeq(), err, ErrMalformedCommand)
	}
	return &p, nil
}

// ApplyAnnouncement adds the key that ann announces and schedules the retirement it names. cmd is the
// command that carries ann in its payload; it must verify at now with a key this keyring trusts. ann may be
// nil, in which case the announcement is taken from cmd's payload; if given, it must equal the carried one.
//
// The announced key must belong to this org, have a 32-byte public key and a validity start, and not be
// revoked. A retirement must name a trusted key other than the announced one, with a time no earlier than
// the new key's validity start, so that old and new overlap. A retirement is never postponed: an earlier
// scheduled retirement stands. Announcing an already trusted key with the same public key is a no-op apart
// from its retirement schedule, so a re-sent announcement is harmless. On error nothing changes.
func (k *Keyring) ApplyAnnouncement(cmd *pb.ControlCommand, ann *pb.KeyAnnouncement, now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.verifyLocked(cmd, now); err != nil {
		return fmt.Errorf("key announcement: %w", err)
	}
	p, err := carriedPayload(cmd)
	if err != nil {
		return fmt.Errorf("key announcement: %w", err)
	}
	carried := p.GetKeyAnnouncement()
	if carried == nil {
		return fmt.Errorf("key announcement: command seq %d carries none: %w", cmd.GetMonotonicSeq(), ErrPayloadMismatch)
	}
	if ann == nil {
		ann = carried
	} else if !proto.Equal(ann, carried) {
		return fmt.Errorf("key announcement: differs from the one command seq %d carries: %w", cmd.GetMonotonicSeq(), ErrPayloadMismatch)
	}

	nk := ann.GetKey()
	if nk == nil {
		return fmt.Errorf("key announcement: no key: %w", ErrMalformedKey)
	}
	id := nk.GetKeyId()
	if nk.GetOrgId() != k.orgID {
		return fmt.Errorf("key announcement: key %q has org %q, not %q: %w", id, nk.GetOrgId(), k.orgID, ErrWrongOrg)
	}
	if err := checkKeyIDOrg(id, k.orgID); err != nil {
		return fmt.Errorf("key announcement: %w", err)
	}
	if _, ok := k.revoked[id]; ok || nk.GetRevoked() {
		return fmt.Errorf("key announcement: key %q: %w", id, ErrRevokedKey)
	}
	if len(nk.GetPublicKey()) != ed25519.PublicKeySize {
		return fmt.Errorf("key announcement: key %q: public key is %d bytes, want %d: %w", id, len(nk.GetPublicKey()), ed25519.PublicKeySize, ErrMalformedKey)
	}
	if nk.GetValidFromUnixMs() <= 0 {
		return fmt.Errorf("key announcement: key %q: %w", id, ErrNoValidityStart)
	}
	if ra := nk.GetRetireAfterUnixMs(); ra != 0 && ra <= nk.GetValidFromUnixMs() {
		return fmt.Errorf("key announcement: key %q retires at or before its validity start: %w", id, ErrBadRetirement)
	}
	existing, known := k.keys[id]
	if known && !bytes.Equal(existing.GetPublicKey(), nk.GetPublicKey()) {
		return fmt.Errorf("key announcement: key %q: %w", id, ErrKeyConflict)
	}
	var old *pb.CommandKey
	if rid := ann.GetRetireKeyId(); rid != "" {
		if rid == id {
			return fmt.Errorf("key announcement: key %q would retire itself: %w", id, ErrBadRetirement)
		}
		if _, ok := k.revoked[rid]; ok {
			return fmt.Errorf("key announcement: retire key %q: %w", rid, ErrRevokedKey)
		}
		if old = k.keys[rid]; old == nil {
			return fmt.Errorf("key announcement: retire key %q: %w", rid, ErrUnknownKey)
		}
		if at := ann.GetRetireAtUnixMs(); at <= 0 || at < nk.GetValidFromUnixMs() {
			return fmt.Errorf("key announcement: retire key %q at %d, before key %q is valid from %d: %w",
				rid, at, id, nk.GetValidFromUnixMs(), ErrBadRetirement)
		}
	} else if ann.GetRetireAtUnixMs() != 0 {
		return fmt.Errorf("key announcement: retirement time without a key to retire: %w", ErrBadRetirement)
	}

	// Validated: apply.
	if known {
		existing.RetireAfterUnixMs = earliestRetirement(existing.GetRetireAfterUnixMs(), nk.GetRetireAfterUnixMs())
	} else {
		k.keys[id] = proto.Clone(nk).(*pb.CommandKey)
	}
	if old != nil {
		old.RetireAfterUnixMs = earliestRetirement(old.GetRetireAfterUnixMs(), ann.GetRetireAtUnixMs())
	}
	return nil
}

// ApplyRevocation records that the key rev names is revoked: from now on, and forever, commands signed by it
// and announcements of it are refused. cmd is the command that carries rev; it must verify at now with a key
// this keyring trusts (possibly the key being revoked). rev may be nil, in which case it is taken from cmd's
// payload; if given, it must equal the carried one. Revoking an id the node never trusted is recorded too.
func (k *Keyring) ApplyRevocation(cmd *pb.ControlCommand, rev *pb.KeyRevocation, now time.Time) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.verifyLocked(cmd, now); err != nil {
		return fmt.Errorf("key revocation: %w", err)
	}
	p, err := carriedPayload(cmd)
	if err != nil {
		return fmt.Errorf("key revocation: %w", err)
	}
	carried := p.GetKeyRevocation()
	if carried == nil {
		return fmt.Errorf("key revocation: command seq %d carries none: %w", cmd.GetMonotonicSeq(), ErrPayloadMismatch)
	}
	if rev == nil {
		rev = carried
	} else if !proto.Equal(rev, carried) {
		return fmt.Errorf("key revocation: differs from the one command seq %d carries: %w", cmd.GetMonotonicSeq(), ErrPayloadMismatch)
	}
	if rev.GetOrgId() != k.orgID {
		return fmt.Errorf("key revocation: org %q, not %q: %w", rev.GetOrgId(), k.orgID, ErrWrongOrg)
	}
	id := rev.GetKeyId()
	if err := checkKeyIDOrg(id, k.orgID); err != nil {
		return fmt.Errorf("key revocation: %w", err)
	}
	if _, ok := k.revoked[id]; ok {
		return nil
	}
	rec, ok := k.keys[id]
	if ok {
		delete(k.keys, id)
	} else {
		rec = &pb.CommandKey{OrgId: k.orgID, KeyId: id}
	}
	rec.Revoked = true
	k.revoked[id] = rec
	return nil
}

// Snapshot returns every key the keyring knows, trusted and revoked (revoked=true), sorted by key id, for
// the node to persist; NewKeyring(orgID, snapshot) restores it. The records are copies.
func (k *Keyring) Snapshot() []*pb.CommandKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]*pb.CommandKey, 0, len(k.keys)+len(k.revoked))
	for _, ck := range k.keys {
		out = append(out, proto.Clone(ck).(*pb.CommandKey))
	}
	for _, ck := range k.revoked {
		out = append(out, proto.Clone(ck).(*pb.CommandKey))
	}
	slices.SortFunc(out, func(a, b *pb.CommandKey) int {
		if a.GetKeyId() < b.GetKeyId() {
			return -1
		}
		if a.GetKeyId() > b.GetKeyId() {
			return 1
		}
		return 0
	})
	return out
}

// earliestRetirement merges two retirement times where 0 means none scheduled.
func earliestRetirement(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	default:
		return min(a, b)
	}
}
