package cloudcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"google.golang.org/protobuf/proto"
)

// Command ids of key commands are derived from the change, so a change sent again (a retried revocation, a
// member retrying after a lost answer) finds the command the Node grain queued the first time (IssueOnce)
// and queues nothing twice.
const (
	rotateCommandPrefix = "keys-rotate-"
	revokeCommandPrefix = "keys-revoke-"
)

// nodeRecords is a store that lists enrolled nodes (server/pgstore.Store).
type nodeRecords interface {
	NodeRecords() ([]*pb.NodeRecord, error)
}

// KeyNotice is what queueing a key command to one node did.
type KeyNotice struct {
	Node         string `json:"node"`
	Seq          uint64 `json:"seq,omitempty"`
	Sent         bool   `json:"sent"`
	StreamMember string `json:"stream_member,omitempty"`
	Error        string `json:"error,omitempty"`
}

// KeyChangeResult answers a rotation or revocation.
type KeyChangeResult struct {
	// KeyID is the new key (rotation) or the revoked one.
	KeyID string `json:"key_id"`
	// SignerKeyID is the key the announcement is signed with (rotation): the one it retires.
	SignerKeyID string `json:"signer_key_id,omitempty"`
	// RetireAt is when SignerKeyID retires (rotation).
	RetireAt time.Time `json:"retire_at,omitzero"`
	// Already: the change was made before this request (a key revoked already, or an announcement sent
	// again): nothing was written, and the key command is queued only where it was not.
	Already bool `json:"already,omitempty"`
	// Version is the stored key set's version after the change.
	Version int64 `json:"version"`
	// CommandID is the key command's id on every node.
	CommandID string `json:"command_id"`
	// Nodes lists every confirmed node and what queueing the key command to it did; a node whose queueing
	// failed gets it when the change is sent again (same command id).
	Nodes []KeyNotice `json:"nodes"`
}

// orgSigner is the member's shared, changeable key set; ErrKeysUnavailable without one.
func (m *Member) orgSigner() (*OrgSigner, error) {
	ks, ok := m.env.cfg.Signer.(*OrgSigner)
	if !ok || !ks.Shared() {
		return nil, fmt.Errorf("%w: the member runs without shared secrets (--cluster-kek-file)", ErrKeysUnavailable)
	}
	if _, ok := m.env.cfg.Store.(nodeRecords); !ok {
		return nil, fmt.Errorf("%w: the store lists no enrolled nodes to announce a change to", ErrKeysUnavailable)
	}
	return ks, nil
}

// keyNodes lists the confirmed, unrevoked nodes (every one must hear of a key change), sorted.
func (m *Member) keyNodes() ([]string, error) {
	recs, err := m.env.cfg.Store.(nodeRecords).NodeRecords()
	if err != nil {
		return nil, fmt.Errorf("list nodes for a key change: %w", err)
	}
	var out []string
	for _, r := range recs {
		if r.GetConfirmed() && !r.GetRevoked() {
			out = append(out, r.GetNodeId())
		}
	}
	slices.Sort(out)
	return out, nil
}

// KeyID normalizes a key id given by an operator: the org's prefix may be left out.
func (m *Member) keyID(ks *OrgSigner, id string) (string, error) {
	if id == "" || len(id) > 200 || strings.ContainsAny(id, " \t\r\n") {
		return "", fmt.Errorf("%w: key id %q", ErrInvalid, id)
	}
	if !strings.Contains(id, "/") {
		id = ks.OrgID() + "/" + id
	}
	if org, ok := signing.KeyIDOrg(id); !ok || org != ks.OrgID() {
		return "", fmt.Errorf("%w: %q is not a key id of org %s", ErrUnknownKey, id, ks.OrgID())
	}
	return id, nil
}

// RotateKeys makes a new active command key by compare-and-set on the shared key set (ErrKeyConflict when
// another rotation replaced expectActive, or the key active when the request read the set, first), then
// queues the announcement, signed by the key it retires, to every confirmed node. Every member signs with
// the new key once it has read the new set (at once here, within Config.KeyReload elsewhere).
func (m *Member) RotateKeys(ctx context.Context, overlap time.Duration, expectActive string) (KeyChangeResult, error) {
	ks, err := m.orgSigner()
	if err != nil {
		return KeyChangeResult{}, err
	}
	if expectActive != "" {
		if expectActive, err = m.keyID(ks, expectActive); err != nil {
			return KeyChangeResult{}, err
		}
	}
	nodes, err := m.keyNodes() // before the change: a store that cannot list them changes nothing
	if err != nil {
		return KeyChangeResult{}, err
	}
	rot, v, err := ks.rotate(m.env.cfg.Clock.Now(), overlap, expectActive)
	if err != nil {
		return KeyChangeResult{}, err
	}
	res := KeyChangeResult{KeyID: rot.NewKeyID, SignerKeyID: rot.SignerKeyID, Version: v,
		RetireAt: time.UnixMilli(rot.Announcement.GetRetireAtUnixMs()).UTC(), CommandID: rotateCommandPrefix + rot.NewKeyID}
	m.env.log.Info("command key rotated", slog.String("new_key", rot.NewKeyID), slog.String("retiring_key", rot.SignerKeyID),
		slog.Time("retire_at", res.RetireAt), slog.Int64("version", v))
	res.Nodes = m.queueKeyCommand(ctx, nodes, res.CommandID, "system:key-rotation", rot.Payload)
	return res, nil
}

// RevokeKey revokes a command key for good by compare-and-set on the shared key set (the active key is
// refused: rotate first), then queues the revocation to every confirmed node, signed with the active key.
// Revoking a revoked key writes nothing and queues the revocation only where it was not queued before.
func (m *Member) RevokeKey(ctx context.Context, keyID string) (KeyChangeResult, error) {
	ks, err := m.orgSigner()
	if err != nil {
		return KeyChangeResult{}, err
	}
	if keyID, err = m.keyID(ks, keyID); err != nil {
		return KeyChangeResult{}, err
	}
	nodes, err := m.keyNodes()
	if err != nil {
		return KeyChangeResult{}, err
	}
	rev, already, v, err := ks.revoke(m.env.cfg.Clock.Now(), keyID)
	if err != nil {
		return KeyChangeResult{}, err
	}
	res := KeyChangeResult{KeyID: rev.KeyID, Already: already, Version: v, CommandID: revokeCommandPrefix + rev.KeyID}
	m.env.log.Warn("command key revoked", slog.String("key", keyID), slog.Bool("already", already), slog.Int64("version", v))
	res.Nodes = m.queueKeyCommand(ctx, nodes, res.CommandID, "system:key-revocation", rev.Payload)
	return res, nil
}

// AnnounceKey queues the stored announcement of keyID (made by the rotation to it) again to every
// confirmed node, under the rotation's command id: a node that has it queued already gets nothing new, so
// it is safe to repeat after a rotation whose answer listed nodes with errors.
func (m *Member) AnnounceKey(ctx context.Context, keyID string) (KeyChangeResult, error) {
	ks, err := m.orgSigner()
	if err != nil {
		return KeyChangeResult{}, err
	}
	if keyID, err = m.keyID(ks, keyID); err != nil {
		return KeyChangeResult{}, err
	}
	nodes, err := m.keyNodes()
	if err != nil {
		return KeyChangeResult{}, err
	}
	payload, err := ks.announcement(keyID)
	if err != nil {
		return KeyChangeResult{}, err
	}
	p := &pb.CommandPayload{}
	if err := proto.Unmarshal(payload, p); err != nil || p.GetKeyAnnouncement() == nil {
		return KeyChangeResult{}, fmt.Errorf("%w: the stored announcement of %s does not decode", ErrCorruptSecret, keyID)
	}
	ann := p.GetKeyAnnouncement()
	res := KeyChangeResult{KeyID: keyID, SignerKeyID: ann.GetRetireKeyId(), RetireAt: time.UnixMilli(ann.GetRetireAtUnixMs()).UTC(),
		Already: true, Version: ks.Version(), CommandID: rotateCommandPrefix + keyID}
	res.Nodes = m.queueKeyCommand(ctx, nodes, res.CommandID, "system:key-rotation", payload)
	return res, nil
}

// KeyList is the member's view of the org's command keys.
type KeyList struct {
	Version int64     `json:"version"`
	Active  string    `json:"active"`
	Keys    []KeyJSON `json:"keys"`
}

// KeyJSON is one key as the endpoints show it.
type KeyJSON struct {
	KeyID       string    `json:"key_id"`
	State       string    `json:"state"`
	Fingerprint string    `json:"fingerprint"`
	ValidFrom   time.Time `json:"valid_from"`
	RetireAfter time.Time `json:"retire_after,omitzero"`
}

// Keys lists the org's command keys as this member signs with them (read again from the store first, so
// the answer is the stored set on whichever member is asked).
func (m *Member) Keys() (KeyList, error) {
	ks, err := m.orgSigner()
	if err != nil {
		return KeyList{}, err
	}
	if _, err := ks.Refresh(); err != nil {
		return KeyList{}, err
	}
	out := KeyList{Version: ks.Version(), Keys: []KeyJSON{}}
	for _, k := range ks.List() {
		j := KeyJSON{KeyID: k.KeyID, State: k.State.String(), Fingerprint: signing.Fingerprint(k.Key.GetPublicKey()),
			ValidFrom: time.UnixMilli(k.Key.GetValidFromUnixMs()).UTC()}
		if ms := k.Key.GetRetireAfterUnixMs(); ms != 0 {
			j.RetireAfter = time.UnixMilli(ms).UTC()
		}
		if k.State == signing.KeyActive {
			out.Active = k.KeyID
		}
		out.Keys = append(out.Keys, j)
	}
	return out, nil
}

// queueKeyCommand queues a key command to each node through its Node grain, under one command id.
func (m *Member) queueKeyCommand(ctx context.Context, nodes []string, commandID, actor string, payload []byte) []KeyNotice {
	out := make([]KeyNotice, 0, len(nodes))
	failed := 0
	for _, n := range nodes {
		rep, err := m.Issue(ctx, Command{NodeID: n, CommandID: commandID, Actor: actor, Payload: payload})
		kn := KeyNotice{Node: n, Seq: rep.GetSeq(), Sent: rep.GetSent(), StreamMember: rep.GetStreamMember()}
		if err != nil {
			kn.Error = err.Error()
			failed++
		}
		out = append(out, kn)
	}
	if failed > 0 {
		m.env.log.Error("key command not queued to every node; send the change again to retry", slog.String("command", commandID),
			slog.Int("failed", failed), slog.Int("nodes", len(nodes)))
	}
	return out
}

// keysStatus maps a key endpoint's error to its HTTP status.
func keysStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return 400
	case errors.Is(err, ErrUnknownKey), errors.Is(err, ErrNotFound):
		return 404
	case errors.Is(err, ErrKeyConflict):
		return 409
	case errors.Is(err, ErrKeysUnavailable):
		return 503
	}
	return 502
}
