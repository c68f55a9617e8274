package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// KeyState is where an issuer key is in its life, at a given time.
type KeyState int

const (
	// KeyActive: the key the issuer signs new commands with (the newest usable key).
	KeyActive KeyState = iota + 1
	// KeyPending: announced with a validity start still in the future.
	KeyPending
	// KeyRetiring: still accepted by nodes (within its overlap, or not yet scheduled to retire), but
	// superseded by a newer key; it signs only key announcements that retire it.
	KeyRetiring
	// KeyRetired: past its retirement time; nodes refuse it.
	KeyRetired
	// KeyRevoked: revoked; nodes refuse it forever.
	KeyRevoked
)

func (s KeyState) String() string {
	switch s {
	case KeyActive:
		return "active"
	case KeyPending:
		return "pending"
	case KeyRetiring:
		return "retiring"
	case KeyRetired:
		return "retired"
	case KeyRevoked:
		return "revoked"
	default:
		return fmt.Sprintf("KeyState(%d)", int(s))
	}
}

// KeyRecord is one issuer key as persisted by the cloud: the public record nodes see, and the ed25519
// private key seed (32 bytes). Store it encrypted at rest or in a secret store; never send it anywhere.
type KeyRecord struct {
	Key         *pb.CommandKey
	PrivateSeed []byte
}

// KeyInfo is a key and its state at the time Keys was asked.
type KeyInfo struct {
	KeyID string
	State KeyState
	Key   *pb.CommandKey // copy of the public record
}

// Rotation is the result of OrgKeys.Rotate. Send Payload to every node of the org in a ControlCommand
// (the node's own node_id, seq, epoch) signed with Rotation.Sign: the announcement must be signed by the
// key the nodes already trust (SignerKeyID), not by the new one.
type Rotation struct {
	NewKeyID     string
	SignerKeyID  string
	Announcement *pb.KeyAnnouncement
	Payload      []byte // serialized pb.CommandPayload{key_announcement}
	// signer is SignerKeyID's private key, held for Sign. Never serialize a Rotation.
	signer ed25519.PrivateKey
}

// Sign signs cmd, which must carry exactly this rotation's Payload, with SignerKeyID (setting cmd.KeyId),
// whatever became of that key after the rotation. The commands carrying an announcement are made (each
// node's seq allocated) after Rotate returns, and by then the old key may already be revoked or past its
// overlap; refusing to sign then would lose the announcement while the revocation or the new key's
// commands, queued after it, still go out, and the node could never trust the new key. Each node takes the
// announcement in seq order, before anything queued after the rotation.
func (r *Rotation) Sign(cmd *pb.ControlCommand) error {
	switch {
	case cmd == nil:
		return fmt.Errorf("sign the announcement of key %q: nil command: %w", r.NewKeyID, ErrMalformedCommand)
	case len(r.signer) != ed25519.PrivateKeySize:
		return fmt.Errorf("sign the announcement of key %q: the rotation holds no signing key: %w", r.NewKeyID, ErrUnknownKey)
	case !bytes.Equal(cmd.GetPayload(), r.Payload):
		return fmt.Errorf("sign the announcement of key %q: command seq %d carries another payload: %w", r.NewKeyID,
			cmd.GetMonotonicSeq(), ErrPayloadMismatch)
	}
	cmd.KeyId = r.SignerKeyID
	return Sign(r.signer, cmd)
}

// Revocation is the result of OrgKeys.Revoke. Send Payload to every node of the org in a ControlCommand
// signed with Sign (the active key, never the revoked one).
type Revocation struct {
	KeyID      string
	Revocation *pb.KeyRevocation
	Payload    []byte // serialized pb.CommandPayload{key_revocation}
}

type issuerKey struct {
	pub  *pb.CommandKey
	priv ed25519.PrivateKey
}

// OrgKeys is the cloud's set of command-issuance keys for one org: it generates them, picks the one to
// sign with, rotates, retires and revokes them. It holds private keys in memory only; Export/ImportOrgKeys
// move them to and from the store.
type OrgKeys struct {
	mu    sync.Mutex
	orgID string
	keys  []*issuerKey // creation order
}

// NewOrgKeys makes the first key for orgID, valid from now with no retirement.
func NewOrgKeys(orgID string, now time.Time) (*OrgKeys, error) {
	if orgID == "" {
		return nil, fmt.Errorf("new org keys: %w", ErrEmptyOrg)
	}
	o := &OrgKeys{orgID: orgID}
	if _, err := o.generateLocked(now); err != nil {
		return nil, fmt.Errorf("new org keys for %q: %w", orgID, err)
	}
	return o, nil
}

// ImportOrgKeys restores what Export returned. Every record must belong to orgID, and every private seed
// must produce the record's public key.
func ImportOrgKeys(orgID string, recs []KeyRecord) (*OrgKeys, error) {
	if orgID == "" {
		return nil, fmt.Errorf("import org keys: %w", ErrEmptyOrg)
	}
	o := &OrgKeys{orgID: orgID}
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		id := r.Key.GetKeyId()
		if r.Key == nil {
			return nil, fmt.Errorf("import org keys for %q: record %d: no public record: %w", orgID, i, ErrMalformedKey)
		}
		if r.Key.GetOrgId() != orgID {
			return nil, fmt.Errorf("import org keys for %q: key %q has org %q: %w", orgID, id, r.Key.GetOrgId(), ErrWrongOrg)
		}
		if err := checkKeyIDOrg(id, orgID); err != nil {
			return nil, fmt.Errorf("import org keys for %q: %w", orgID, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("import org keys for %q: key %q listed twice: %w", orgID, id, ErrKeyConflict)
		}
		seen[id] = true
		if len(r.PrivateSeed) != ed25519.SeedSize {
			return nil, fmt.Errorf("import org keys for %q: key %q: private seed is %d bytes, want %d: %w",
				orgID, id, len(r.PrivateSeed), ed25519.SeedSize, ErrMalformedKey)
		}
		priv := ed25519.NewKeyFromSeed(r.PrivateSeed)
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), r.Key.GetPublicKey()) {
			return nil, fmt.Errorf("import org keys for %q: key %q: private seed does not match public key: %w", orgID, id, ErrKeyConflict)
		}
		o.keys = append(o.keys, &issuerKey{pub: proto.Clone(r.Key).(*pb.CommandKey), priv: priv})
	}
	return o, nil
}

// Export returns every key (public record and private seed), in creation order, for the cloud to persist.
func (o *OrgKeys) Export() []KeyRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]KeyRecord, 0, len(o.keys))
	for _, k := range o.keys {
		out = append(out, KeyRecord{Key: proto.Clone(k.pub).(*pb.CommandKey), PrivateSeed: bytes.Clone(k.priv.Seed())})
	}
	return out
}

// OrgID is the org these keys sign for.
func (o *OrgKeys) OrgID() string { return o.orgID }

func (o *OrgKeys) generateLocked(now time.Time) (*issuerKey, error) {
	var id string
	for {
		var err error
		if id, err = NewKeyID(o.orgID); err != nil {
			return nil, err
		}
		if o.findLocked(id) == nil {
			break
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k := &issuerKey{
		pub:  &pb.CommandKey{OrgId: o.orgID, KeyId: id, PublicKey: pub, ValidFromUnixMs: now.UnixMilli()},
		priv: priv,
	}
	o.keys = append(o.keys, k)
	return k, nil
}

func (o *OrgKeys) findLocked(id string) *issuerKey {
	for _, k := range o.keys {
		if k.pub.GetKeyId() == id {
			return k
		}
	}
	return nil
}

// usable reports whether k may sign at now: not revoked, valid, not retired.
func usable(k *issuerKey, now time.Time) bool {
	p := k.pub
	if p.GetRevoked() || now.Before(time.UnixMilli(p.GetValidFromUnixMs())) {
		return false
	}
	return p.GetRetireAfterUnixMs() == 0 || now.Before(time.UnixMilli(p.GetRetireAfterUnixMs()))
}

// activeLocked is the newest usable key (latest validity start, then latest created), excluding skip.
func (o *OrgKeys) activeLocked(now time.Time, skip string) *issuerKey {
	var best *issuerKey
	for _, k := range o.keys {
		if k.pub.GetKeyId() == skip || !usable(k, now) {
			continue
		}
		if best == nil || k.pub.GetValidFromUnixMs() >= best.pub.GetValidFromUnixMs() {
			best = k
		}
	}
	return best
}

// ActiveKeyID is the id of the key Sign uses at now.
func (o *OrgKeys) ActiveKeyID(now time.Time) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := o.activeLocked(now, "")
	if k == nil {
		return "", fmt.Errorf("org %q: %w", o.orgID, ErrNoActiveKey)
	}
	return k.pub.GetKeyId(), nil
}

// Sign sets cmd.KeyId to the active key and signs cmd with it.
func (o *OrgKeys) Sign(cmd *pb.ControlCommand, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := o.activeLocked(now, "")
	if k == nil {
		return fmt.Errorf("sign for org %q: %w", o.orgID, ErrNoActiveKey)
	}
	return o.signLocked(k, cmd)
}

// SignWith signs cmd with the named key, which must be usable at now (not revoked, valid, not retired).
// Use it for the command carrying a Rotation, with Rotation.SignerKeyID.
func (o *OrgKeys) SignWith(keyID string, cmd *pb.ControlCommand, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := o.findLocked(keyID)
	switch {
	case k == nil:
		return fmt.Errorf("sign for org %q with key %q: %w", o.orgID, keyID, ErrUnknownKey)
	case k.pub.GetRevoked():
		return fmt.Errorf("sign for org %q with key %q: %w", o.orgID, keyID, ErrRevokedKey)
	case now.Before(time.UnixMilli(k.pub.GetValidFromUnixMs())):
		return fmt.Errorf("sign for org %q with key %q: %w", o.orgID, keyID, ErrKeyNotYetValid)
	case !usable(k, now):
		return fmt.Errorf("sign for org %q with key %q: %w", o.orgID, keyID, ErrKeyRetired)
	}
	return o.signLocked(k, cmd)
}

func (o *OrgKeys) signLocked(k *issuerKey, cmd *pb.ControlCommand) error {
	if cmd == nil {
		return fmt.Errorf("sign for org %q: nil command: %w", o.orgID, ErrMalformedCommand)
	}
	cmd.KeyId = k.pub.GetKeyId()
	return Sign(k.priv, cmd)
}

// Rotate makes a new key valid from now, which becomes the active key, and schedules the current active
// key to retire at now+overlap (or earlier, if it was already scheduled earlier). The overlap must cover
// delivery of the announcement to every node: a node that receives the announcement only after the old
// key retired cannot verify it and must be given the keys again (re-enrollment).
func (o *OrgKeys) Rotate(now time.Time, overlap time.Duration) (*Rotation, error) {
	if overlap <= 0 {
		return nil, fmt.Errorf("rotate keys of org %q: overlap %s: %w", o.orgID, overlap, ErrBadOverlap)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.activeLocked(now, "")
	if cur == nil {
		return nil, fmt.Errorf("rotate keys of org %q: %w", o.orgID, ErrNoActiveKey)
	}
	nk, err := o.generateLocked(now)
	if err != nil {
		return nil, fmt.Errorf("rotate keys of org %q: %w", o.orgID, err)
	}
	retireAt := now.Add(overlap).UnixMilli()
	if retireAt <= nk.pub.GetValidFromUnixMs() {
		retireAt = nk.pub.GetValidFromUnixMs() + 1 // sub-millisecond overlap: still strictly after
	}
	cur.pub.RetireAfterUnixMs = earliestRetirement(cur.pub.GetRetireAfterUnixMs(), retireAt)
	ann := &pb.KeyAnnouncement{
		Key:            proto.Clone(nk.pub).(*pb.CommandKey),
		RetireKeyId:    cur.pub.GetKeyId(),
		RetireAtUnixMs: cur.pub.GetRetireAfterUnixMs(),
	}
	payload, err := proto.Marshal(&pb.CommandPayload{KeyAnnouncement: ann})
	if err != nil {
		return nil, fmt.Errorf("rotate keys of org %q: encode announcement: %w", o.orgID, err)
	}
	return &Rotation{
		NewKeyID:     nk.pub.GetKeyId(),
		SignerKeyID:  cur.pub.GetKeyId(),
		Announcement: proto.Clone(ann).(*pb.KeyAnnouncement),
		Payload:      payload,
		signer:       cur.priv,
	}, nil
}

// Retire stops the issuer from signing with keyID from now on (its retirement time becomes now, unless it
// was already earlier). Nodes learn retirement times from announcements; Retire is for keys that should stop
// signing early. It refuses to retire the only usable key: rotate first.
func (o *OrgKeys) Retire(keyID string, now time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := o.findLocked(keyID)
	if k == nil {
		return fmt.Errorf("retire key %q of org %q: %w", keyID, o.orgID, ErrUnknownKey)
	}
	if k.pub.GetRevoked() {
		return fmt.Errorf("retire key %q of org %q: %w", keyID, o.orgID, ErrRevokedKey)
	}
	if usable(k, now) && o.activeLocked(now, keyID) == nil {
		return fmt.Errorf("retire key %q of org %q: it is the only usable key, rotate first: %w", keyID, o.orgID, ErrNoActiveKey)
	}
	k.pub.RetireAfterUnixMs = earliestRetirement(k.pub.GetRetireAfterUnixMs(), now.UnixMilli())
	return nil
}

// Revoke marks keyID revoked and returns the revocation to send to every node of the org, signed with Sign.
// Revoking an already revoked key returns the revocation again. It refuses to revoke the only usable key,
// because nothing would be left to sign the revocation: rotate first, then revoke.
func (o *OrgKeys) Revoke(keyID string, now time.Time) (*Revocation, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := o.findLocked(keyID)
	if k == nil {
		return nil, fmt.Errorf("revoke key %q of org %q: %w", keyID, o.orgID, ErrUnknownKey)
	}
	if !k.pub.GetRevoked() && o.activeLocked(now, keyID) == nil {
		return nil, fmt.Errorf("revoke key %q of org %q: no other usable key to sign the revocation, rotate first: %w",
			keyID, o.orgID, ErrNoActiveKey)
	}
	k.pub.Revoked = true
	rev := &pb.KeyRevocation{OrgId: o.orgID, KeyId: keyID}
	payload, err := proto.Marshal(&pb.CommandPayload{KeyRevocation: rev})
	if err != nil {
		return nil, fmt.Errorf("revoke key %q of org %q: encode: %w", keyID, o.orgID, err)
	}
	return &Revocation{KeyID: keyID, Revocation: rev, Payload: payload}, nil
}

// Keys lists every key with its state at now, in creation order.
func (o *OrgKeys) Keys(now time.Time) []KeyInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	active := o.activeLocked(now, "")
	out := make([]KeyInfo, 0, len(o.keys))
	for _, k := range o.keys {
		out = append(out, KeyInfo{KeyID: k.pub.GetKeyId(), State: stateOf(k, active, now), Key: proto.Clone(k.pub).(*pb.CommandKey)})
	}
	return out
}

func stateOf(k, active *issuerKey, now time.Time) KeyState {
	p := k.pub
	switch {
	case p.GetRevoked():
		return KeyRevoked
	case p.GetRetireAfterUnixMs() != 0 && !now.Before(time.UnixMilli(p.GetRetireAfterUnixMs())):
		return KeyRetired
	case now.Before(time.UnixMilli(p.GetValidFromUnixMs())):
		return KeyPending
	case k == active:
		return KeyActive
	default:
		return KeyRetiring
	}
}

// PublicKeys returns the public records of every key, revoked ones included (revoked=true), in creation
// order: what EnrollResponse.command_keys carries so a new node's Keyring starts with the org's current
// trust, revocations included.
func (o *OrgKeys) PublicKeys() []*pb.CommandKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]*pb.CommandKey, 0, len(o.keys))
	for _, k := range o.keys {
		out = append(out, proto.Clone(k.pub).(*pb.CommandKey))
	}
	return out
}
