package node

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
)

// Ownership transfer on the outgoing node (ACTION_TRANSFER, a signed command for a device this node still
// owns):
//
//	spec.params  transfer_to, transfer_credential_key (+ transfer_signing_key for a Proto rig)
//	spec.sealed  this node's envelopes of the device's credentials (the cloud's ResealRequest)
//	  ─▶ open each with this node's credential key, seal it to the new owner (Opener.Reseal: the plaintext
//	     lives only inside that call)
//	  ─▶ Proto rig: replace the rig's auth key with the new owner's miner-signing key, authenticated by this
//	     node's JWT (the rig keeps one key, so this node's access ends with it)
//	  ─▶ result SUCCEEDED, message = summary + the new envelopes (sealing.FormatResealed); the cloud uploads
//	     them (Vault.CompleteTransfer), deletes the old ones and moves the ownership map.
//
// Every envelope is re-sealed before the rig is touched: a credential this node cannot open fails the
// command with the rig still this node's.

// rigHandover is a driver that can move its miner's pairing to another key (*proto.Driver).
type rigHandover interface {
	HandOver(ctx context.Context, next ed25519.PublicKey) error
}

// transferPlan is a transfer command, checked.
type transferPlan struct {
	to      string
	toKey   []byte
	signing ed25519.PublicKey // nil: no rig pairing to move
	sources []*sealing.Envelope
}

// planTransfer reads and checks a transfer spec for (nodeID, minerID): the new owner, its keys, and this
// node's envelopes (sealed secrets for other nodes are ignored; two for one purpose are refused).
func planTransfer(nodeID, minerID string, spec *pb.CommandSpec) (transferPlan, error) {
	p := transferPlan{to: spec.GetParams()[sealing.ParamTransferTo]}
	if err := sealing.ValidateID("transfer target", p.to); err != nil {
		return p, fmt.Errorf("transfer %s: %w: %w", minerID, ErrSealedSecret, err)
	}
	if strings.ContainsAny(p.to, "/ \t\r\n") {
		return p, fmt.Errorf("transfer %s: target node id %q contains '/' or whitespace: %w", minerID, p.to, ErrSealedSecret)
	}
	if p.to == nodeID {
		return p, fmt.Errorf("transfer %s: the target is this node: %w", minerID, ErrSealedSecret)
	}
	raw, err := base64.StdEncoding.DecodeString(spec.GetParams()[sealing.ParamTransferCredentialKey])
	if err != nil {
		return p, fmt.Errorf("transfer %s: credential key: %w: %v", minerID, ErrSealedSecret, err)
	}
	if _, err := sealing.ParsePublicKey(raw); err != nil {
		return p, fmt.Errorf("transfer %s: credential key: %w: %w", minerID, ErrSealedSecret, err)
	}
	p.toKey = raw
	if s := spec.GetParams()[sealing.ParamTransferSigningKey]; s != "" {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return p, fmt.Errorf("transfer %s: miner-signing key is not a base64 ed25519 key: %w", minerID, ErrSealedSecret)
		}
		p.signing = k
	}
	seen := map[string]bool{}
	for _, s := range spec.GetSealed() {
		if s.GetMinerId() != minerID {
			continue
		}
		env, err := sealing.Parse(s.GetEnvelope())
		if err != nil {
			return p, fmt.Errorf("transfer %s: %s: %w: %w", minerID, s.GetPurpose(), ErrSealedSecret, err)
		}
		if env.NodeID != nodeID {
			continue
		}
		if env.DeviceID != minerID || env.Purpose != s.GetPurpose() {
			return p, fmt.Errorf("transfer %s: envelope is bound to %s/%s: %w", minerID, env.DeviceID, env.Purpose, ErrSealedSecret)
		}
		if seen[env.Purpose] {
			return p, fmt.Errorf("transfer %s: two envelopes of %s for this node: %w", minerID, env.Purpose, ErrSealedSecret)
		}
		seen[env.Purpose] = true
		p.sources = append(p.sources, env)
	}
	return p, nil
}

// transfer runs ACTION_TRANSFER for the wrapped driver's miner.
func (s *secretsDriver) transfer(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	p, err := planTransfer(s.nodeID, s.minerID, spec)
	if err != nil {
		return "", err
	}
	if len(p.sources) > 0 && s.op == nil {
		return "", fmt.Errorf("transfer %s: %w", s.minerID, ErrNoCredentialKey)
	}
	pub, _ := sealing.ParsePublicKey(p.toKey)
	out := make([]*sealing.Envelope, 0, len(p.sources))
	purposes := make([]string, 0, len(p.sources))
	for _, src := range p.sources {
		env, err := s.op.Reseal(src, s.minerID, src.Purpose, p.to, pub)
		if err != nil {
			return "", fmt.Errorf("transfer %s: %w: %w", s.minerID, ErrSealedSecret, err)
		}
		out = append(out, env)
		purposes = append(purposes, src.Purpose)
	}
	summary := fmt.Sprintf("re-sealed %d credential(s) to node %s", len(out), p.to)
	if len(purposes) > 0 {
		summary += " (" + strings.Join(purposes, ", ") + ")"
	}
	if p.signing != nil {
		h, ok := s.Driver.(rigHandover)
		if ok {
			if err := h.HandOver(ctx, p.signing); err != nil {
				return "", fmt.Errorf("transfer %s: hand the rig over to node %s: %w", s.minerID, p.to, err)
			}
			summary += "; rig paired to node " + p.to + "'s key"
		}
	}
	return sealing.FormatResealed(summary, out)
}
