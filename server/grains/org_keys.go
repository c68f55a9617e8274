package grains

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/signing"
	"github.com/hashfleet/hashfleet/server/store"
)

// KeyIssuer changes the org's command-issuance keys (server/keys.Manager). The Org actor calls it, so a
// rotation's announcement is queued to every node before any command signed with the new key: both go
// through the Org's mailbox, in order. Each Node actor signs its announcement later, when it allocates the
// seq, with the Rotation's own signer: by then the old key may be revoked (a revocation right after the
// rotation) or past its overlap, and the announcement must still go out ahead of what follows it.
type KeyIssuer interface {
	Rotate(now time.Time, overlap time.Duration) (*signing.Rotation, error)
	Revoke(keyID string, now time.Time) (*signing.Revocation, error)
}

// KeyChange answers a rotation or revocation: what changed and which nodes were sent the signed key
// command.
type KeyChange struct {
	KeyID         string // the new key (rotate) or the revoked one
	SignerKeyID   string // the key the announcement was signed with (rotate)
	RetireAt      time.Time
	NodesNotified []string
}

// keyNodes is every node that must hear of a key change: the ones given (enrolled nodes) and every node the
// org has an actor for.
func (o *Org) keyNodes(given []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range given {
		if !seen[id] && store.ValidNodeID(id) == nil {
			seen[id] = true
			out = append(out, id)
		}
	}
	for id := range o.nodes {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func (o *Org) onRotate(ctx actor.Context, m *rotateKeys) {
	if o.cfg.Keys == nil {
		ctx.Respond(fmt.Errorf("%w: this server has no key issuer", ErrKeys))
		return
	}
	now := o.cfg.Clock.Now()
	rot, err := o.cfg.Keys.Rotate(now, m.overlap)
	if err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrKeys, err))
		return
	}
	nodes := o.keyNodes(m.nodes)
	for _, n := range nodes {
		ctx.Send(o.node(ctx, n), &enqueueCommand{commandID: NewCommandID(now), actor: "system:key-rotation",
			issuedAt: now, keys: rot.Payload, sign: rot.Sign})
	}
	o.log.Info("key rotation announced to nodes", slog.String("new_key", rot.NewKeyID), slog.Int("nodes", len(nodes)))
	ctx.Respond(KeyChange{KeyID: rot.NewKeyID, SignerKeyID: rot.SignerKeyID,
		RetireAt: time.UnixMilli(rot.Announcement.GetRetireAtUnixMs()), NodesNotified: nodes})
}

func (o *Org) onRevoke(ctx actor.Context, m *revokeKey) {
	if o.cfg.Keys == nil {
		ctx.Respond(fmt.Errorf("%w: this server has no key issuer", ErrKeys))
		return
	}
	now := o.cfg.Clock.Now()
	rev, err := o.cfg.Keys.Revoke(m.keyID, now)
	if err != nil {
		if errors.Is(err, signing.ErrUnknownKey) {
			ctx.Respond(fmt.Errorf("%w: %v", ErrUnknownKey, err))
			return
		}
		ctx.Respond(fmt.Errorf("%w: %v", ErrKeys, err))
		return
	}
	nodes := o.keyNodes(m.nodes)
	for _, n := range nodes {
		ctx.Send(o.node(ctx, n), &enqueueCommand{commandID: NewCommandID(now), actor: "system:key-revocation",
			issuedAt: now, keys: rev.Payload})
	}
	o.log.Warn("key revocation sent to nodes", slog.String("key", rev.KeyID), slog.Int("nodes", len(nodes)))
	ctx.Respond(KeyChange{KeyID: rev.KeyID, NodesNotified: nodes})
}

// onPair registers devices a node reported (pending) as owned by that node: the operator's pairing.
func (o *Org) onPair(ctx actor.Context, m *pairDevices) {
	if err := store.ValidNodeID(m.node); err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrInvalidNode, err))
		return
	}
	pending, err := o.cfg.Store.PendingDevices()
	if err != nil {
		ctx.Respond(fmt.Errorf("%w: %v", ErrStore, err))
		return
	}
	byID := map[string]*pb.Device{}
	for _, d := range pending {
		if d.GetNodeId() == m.node {
			byID[d.GetMinerId()] = d
		}
	}
	var devs []*pb.Device
	var unknown []string
	for _, id := range m.minerIDs {
		if d, ok := byID[id]; ok {
			devs = append(devs, d)
			continue
		}
		if cur, ok := o.devices[id]; ok && cur.device.GetNodeId() == m.node {
			continue // already paired to this node
		}
		unknown = append(unknown, id)
	}
	if len(unknown) > 0 {
		ctx.Respond(fmt.Errorf("%w: node %s reported no pending device %v", ErrUnknownMiner, m.node, unknown))
		return
	}
	o.onRegister(ctx, &registerDevices{devices: devs})
}
