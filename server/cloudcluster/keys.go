package cloudcluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"google.golang.org/protobuf/proto"
)

// Command-key rotation and revocation in a cluster (docs/CLUSTER.md, "Key lifecycle"). The org's issuance
// keys are one sealed row, command-keys/<org>, in cluster_secrets; every change is a compare-and-set on its
// version, so of two members changing the keys at once exactly one write lands and the other re-reads:
//
//	POST keys/rotate (member A) ─▶ read row v ─▶ OrgKeys.Rotate ─▶ UpdateSecret(v) ─▶ install v+1 on A
//	                                   ▲ conflict: re-read; a rotation seen since → ErrKeyConflict (409)
//	                               ─▶ ClusterIssueCommand "keys-rotate-<new key>" to every confirmed node
//	                                  (the Node grain signs the announcement with the key it retires)
//	every member: KeyWatcher reads the row every Config.KeyReload and installs a newer version
//
// A Node grain about to queue a key command reads the row first, so it never signs with a key set older
// than the change it carries.

// KeyRowStore reads and compare-and-sets secret rows (server/pgstore.Store).
type KeyRowStore interface {
	// Secret returns the stored row of name.
	Secret(name string) (pgstore.SecretRow, error)
	// UpdateSecret replaces the row if its version is still expectedVersion (pgstore.ErrSecretConflict).
	UpdateSecret(next pgstore.SecretRow, expectedVersion int64) (pgstore.SecretRow, error)
}

// sharedKeys is where an OrgSigner's keys are stored.
type sharedKeys struct {
	rows  KeyRowStore
	kek   KEK
	orgID string
	name  string
}

// maxKeyChangeAttempts bounds the compare-and-set retries of one change (each retry means another member
// wrote the row between our read and our write).
const maxKeyChangeAttempts = 8

// Bounds of a rotation's overlap, as the single-member API's (POST /api/v1/keys/rotate).
const (
	// MaxKeyOverlap: the old key stays trusted this long at most.
	MaxKeyOverlap = 90 * 24 * time.Hour
	// DefaultKeyOverlap is the overlap of a rotation request that names none.
	DefaultKeyOverlap = 24 * time.Hour
)

// errNoChange: the change function found nothing to write (a key revoked already).
var errNoChange = errors.New("no change")

// attach makes the signer's keys changeable and reloadable when st offers the row compare-and-set.
func (o *OrgSigner) attach(st SecretStore, kek KEK, orgID, name string) {
	if rs, ok := st.(KeyRowStore); ok {
		o.shared = &sharedKeys{rows: rs, kek: kek, orgID: orgID, name: name}
	}
}

// Shared reports whether the keys live in a shared row this signer can change and reload.
func (o *OrgSigner) Shared() bool { return o != nil && o.shared != nil }

// Version is the version of the stored row the signer's keys were last read from (0: not read back since
// the member started).
func (o *OrgSigner) Version() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.version
}

// OrgID is the org of the keys.
func (o *OrgSigner) OrgID() string { return o.current().OrgID() }

// List is every key with its state at the clock's now.
func (o *OrgSigner) List() []signing.KeyInfo { return o.current().Keys(o.clk.Now()) }

// announcementJSON is a rotation's announcement as stored (sealed with the keys), so that it can be
// queued again, under the same command id, to nodes its first fan-out did not reach.
type announcementJSON struct {
	NewKeyID string `json:"new_key_id"`
	Payload  []byte `json:"payload"` // serialized pb.CommandPayload{key_announcement}
}

// maxStoredAnnouncements bounds the announcements kept: the latest ones (older rotations' overlaps are
// normally long over).
const maxStoredAnnouncements = 16

// keySet is the stored row, opened.
type keySet struct {
	org  *signing.OrgKeys
	anns []announcementJSON
}

func decodeAnnouncements(name string, plain []byte) ([]announcementJSON, error) {
	var f struct {
		Announcements []announcementJSON `json:"announcements"`
	}
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptSecret, name, err)
	}
	return f.Announcements, nil
}

// load reads, opens and decodes the stored row.
func (o *OrgSigner) load() (keySet, int64, error) {
	sk := o.shared
	if sk == nil {
		return keySet{}, 0, ErrKeysUnavailable
	}
	row, err := sk.rows.Secret(sk.name)
	if err != nil {
		return keySet{}, 0, fmt.Errorf("read command keys: %w", err)
	}
	if row.KEKID != sk.kek.ID() {
		return keySet{}, 0, fmt.Errorf("%w: %s is sealed under KEK %s, this member's KEK is %s", ErrWrongKEK, sk.name, row.KEKID, sk.kek.ID())
	}
	plain, err := sk.kek.Open(sk.name, row.Sealed)
	if err != nil {
		return keySet{}, 0, err
	}
	recs, err := decodeKeys(sk.name, sk.orgID, plain)
	if err != nil {
		return keySet{}, 0, err
	}
	anns, err := decodeAnnouncements(sk.name, plain)
	if err != nil {
		return keySet{}, 0, err
	}
	org, err := signing.ImportOrgKeys(sk.orgID, recs)
	if err != nil {
		return keySet{}, 0, fmt.Errorf("%w: %s: %w", ErrCorruptSecret, sk.name, err)
	}
	if _, err := org.ActiveKeyID(o.clk.Now()); err != nil {
		// A stored set with nothing to sign with is kept out: the member goes on with what it has.
		return keySet{}, 0, fmt.Errorf("%w: %s (version %d): %w", ErrCorruptSecret, sk.name, row.Version, err)
	}
	return keySet{org: org, anns: anns}, row.Version, nil
}

// install makes org the signing keys if version is newer than the current one.
func (o *OrgSigner) install(org *signing.OrgKeys, version int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if version <= o.version {
		return false
	}
	o.org, o.version = org, version
	return true
}

// Refresh reads the stored row and installs it when its version is newer: changed reports that it did.
// Without a shared row it does nothing. On an error the current keys stay.
func (o *OrgSigner) Refresh() (changed bool, err error) {
	if o.shared == nil {
		return false, nil
	}
	ks, v, err := o.load()
	if err != nil {
		return false, err
	}
	return o.install(ks.org, v), nil
}

// change applies fn to the freshly read key set and writes the result by compare-and-set on the row's
// version, re-reading and re-applying fn on a conflict (attempt counts from 0). fn returning errNoChange
// writes nothing. The written set is installed at once.
func (o *OrgSigner) change(fn func(ks *keySet, attempt int) error) (int64, error) {
	sk := o.shared
	if sk == nil {
		return 0, ErrKeysUnavailable
	}
	for attempt := range maxKeyChangeAttempts {
		ks, v, err := o.load()
		if err != nil {
			return 0, err
		}
		org := ks.org
		if err := fn(&ks, attempt); errors.Is(err, errNoChange) {
			o.install(org, v)
			return v, nil
		} else if err != nil {
			return 0, err
		}
		if n := len(ks.anns); n > maxStoredAnnouncements {
			ks.anns = ks.anns[n-maxStoredAnnouncements:]
		}
		pub, plain, err := encodeKeys(sk.orgID, org.Export(), ks.anns...)
		if err != nil {
			return 0, err
		}
		sealed, err := sk.kek.Seal(sk.name, plain)
		if err != nil {
			return 0, err
		}
		row, err := sk.rows.UpdateSecret(pgstore.SecretRow{Name: sk.name, KEKID: sk.kek.ID(), Public: pub, Sealed: sealed}, v)
		if errors.Is(err, pgstore.ErrSecretConflict) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("write command keys: %w", err)
		}
		o.install(org, row.Version)
		return row.Version, nil
	}
	return 0, fmt.Errorf("%w: %s changed %d times in a row under this request; try again", ErrKeyConflict, sk.name, maxKeyChangeAttempts)
}

// rotate makes a new active key and schedules the active one to retire after overlap. expectActive, when
// set, is the key the caller believes active; otherwise the key active when the request first read the
// row. If another rotation replaced it meanwhile, rotate changes nothing and answers ErrKeyConflict: two
// rotations racing leave one new key, not two.
func (o *OrgSigner) rotate(now time.Time, overlap time.Duration, expectActive string) (*signing.Rotation, int64, error) {
	if overlap <= 0 || overlap > MaxKeyOverlap {
		return nil, 0, fmt.Errorf("%w: overlap %s must be above 0 and at most %s", ErrInvalid, overlap, MaxKeyOverlap)
	}
	var rot *signing.Rotation
	want := expectActive
	v, err := o.change(func(ks *keySet, attempt int) error {
		org := ks.org
		active, err := org.ActiveKeyID(now)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrKeyConflict, err)
		}
		if want == "" && attempt == 0 {
			want = active
		}
		if active != want {
			return fmt.Errorf("%w: the active key is %s, not %s: another rotation came first (nothing changed)", ErrKeyConflict, active, want)
		}
		rot, err = org.Rotate(now, overlap)
		if err != nil {
			return fmt.Errorf("rotate: %w", err)
		}
		ks.anns = append(ks.anns, announcementJSON{NewKeyID: rot.NewKeyID, Payload: rot.Payload})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return rot, v, nil
}

// revoke revokes keyID for good. A key revoked already gives its revocation again (already=true) and
// writes nothing; the active key is refused (rotate first), as is an unknown one.
func (o *OrgSigner) revoke(now time.Time, keyID string) (rev *signing.Revocation, already bool, version int64, err error) {
	version, err = o.change(func(ks *keySet, _ int) error {
		org := ks.org
		already = false
		var info *signing.KeyInfo
		for _, k := range org.Keys(now) {
			if k.KeyID == keyID {
				info = &k
				break
			}
		}
		switch {
		case info == nil:
			return fmt.Errorf("%w: %q is not a key of org %s", ErrUnknownKey, keyID, org.OrgID())
		case info.State == signing.KeyActive:
			return fmt.Errorf("%w: %s is the active key: rotate first, then revoke it (nothing changed)", ErrKeyConflict, keyID)
		}
		already = info.State == signing.KeyRevoked
		r, err := org.Revoke(keyID, now)
		if err != nil {
			if errors.Is(err, signing.ErrNoActiveKey) {
				return fmt.Errorf("%w: %w", ErrKeyConflict, err)
			}
			return fmt.Errorf("revoke: %w", err)
		}
		rev = r
		if already {
			return errNoChange
		}
		return nil
	})
	if err != nil {
		return nil, false, 0, err
	}
	return rev, already, version, nil
}

// announcement returns the stored announcement of keyID (read from the store first): ErrUnknownKey when
// keyID is not a key of the set, ErrNotFound when no announcement of it is kept (the org's first key, or a
// rotation older than the latest maxStoredAnnouncements).
func (o *OrgSigner) announcement(keyID string) ([]byte, error) {
	ks, v, err := o.load()
	if err != nil {
		return nil, err
	}
	o.install(ks.org, v)
	known := false
	for _, k := range ks.org.Keys(o.clk.Now()) {
		known = known || k.KeyID == keyID
	}
	if !known {
		return nil, fmt.Errorf("%w: %q is not a key of org %s", ErrUnknownKey, keyID, ks.org.OrgID())
	}
	for i := len(ks.anns) - 1; i >= 0; i-- {
		if ks.anns[i].NewKeyID == keyID {
			return ks.anns[i].Payload, nil
		}
	}
	return nil, fmt.Errorf("%w: no stored announcement of key %s (the org's first key, or an older rotation)", ErrNotFound, keyID)
}

// signAnnouncement signs cmd, which carries ann, with the key ann retires: the key the nodes trusted when
// the rotation was made, whatever became of it since (signing.Rotation.Sign). ann must be a rotation of
// the stored set: its new key and the retiring key's retirement exactly as stored, so an announcement of
// any other key is never signed. A set that does not know the new key yet is read again once.
func (o *OrgSigner) signAnnouncement(cmd *pb.ControlCommand, ann *pb.KeyAnnouncement) error {
	priv, err := announcementKey(o.current(), ann)
	if errors.Is(err, ErrUnknownKey) && o.shared != nil {
		if _, rerr := o.Refresh(); rerr != nil {
			return fmt.Errorf("sign key announcement: %w (reload: %w)", err, rerr)
		}
		priv, err = announcementKey(o.current(), ann)
	}
	if err != nil {
		return fmt.Errorf("sign key announcement: %w", err)
	}
	cmd.KeyId = ann.GetRetireKeyId()
	return signing.Sign(priv, cmd)
}

// announcementKey returns the private key that signs ann, after checking ann against org.
func announcementKey(org *signing.OrgKeys, ann *pb.KeyAnnouncement) (ed25519.PrivateKey, error) {
	newID, oldID := ann.GetKey().GetKeyId(), ann.GetRetireKeyId()
	if newID == "" || oldID == "" || newID == oldID {
		return nil, fmt.Errorf("%w: announcement of %q retiring %q", ErrInvalid, newID, oldID)
	}
	var fresh, signer *signing.KeyRecord
	recs := org.Export()
	for i := range recs {
		switch recs[i].Key.GetKeyId() {
		case newID:
			fresh = &recs[i]
		case oldID:
			signer = &recs[i]
		}
	}
	switch {
	case fresh == nil || signer == nil:
		return nil, fmt.Errorf("%w: announcement of %s retiring %s: not both in the org's key set", ErrUnknownKey, newID, oldID)
	case !bytes.Equal(fresh.Key.GetPublicKey(), ann.GetKey().GetPublicKey()) ||
		fresh.Key.GetValidFromUnixMs() != ann.GetKey().GetValidFromUnixMs():
		return nil, fmt.Errorf("%w: announcement of %s does not match the stored key", ErrInvalid, newID)
	case signer.Key.GetRetireAfterUnixMs() != ann.GetRetireAtUnixMs():
		return nil, fmt.Errorf("%w: announcement retires %s at %d, the stored key retires at %d", ErrInvalid, oldID,
			ann.GetRetireAtUnixMs(), signer.Key.GetRetireAfterUnixMs())
	}
	return ed25519.NewKeyFromSeed(signer.PrivateSeed), nil
}

// keyCommandSigner returns how a Node grain signs a command carrying payload: a key announcement with the
// key it retires, anything else with s's active key (nil s: unsigned). Before a key command (announcement
// or revocation) the shared keys are read again, so a member that has not reloaded since the change never
// signs it with the key set from before.
func keyCommandSigner(s grains.Signer, payload []byte) (func(*pb.ControlCommand) error, error) {
	if s == nil {
		return nil, nil
	}
	ks, _ := s.(*OrgSigner)
	p := &pb.CommandPayload{}
	if ks == nil || proto.Unmarshal(payload, p) != nil || (p.GetKeyAnnouncement() == nil && p.GetKeyRevocation() == nil) {
		return s.Sign, nil
	}
	if _, err := ks.Refresh(); err != nil {
		return nil, fmt.Errorf("reload command keys before a key command: %w", err)
	}
	if ann := p.GetKeyAnnouncement(); ann != nil {
		return func(cmd *pb.ControlCommand) error { return ks.signAnnouncement(cmd, ann) }, nil
	}
	// A revocation is signed only for a key the stored set has revoked: nothing revokes the active key.
	id := p.GetKeyRevocation().GetKeyId()
	for _, k := range ks.List() {
		if k.KeyID == id && k.State == signing.KeyRevoked && p.GetKeyRevocation().GetOrgId() == ks.OrgID() {
			return ks.Sign, nil
		}
	}
	return nil, fmt.Errorf("%w: revocation of %q: the org's key set has not revoked it", ErrInvalid, id)
}
