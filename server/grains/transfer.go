package grains

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

// Ownership transfer: a device moves from its node to another enrolled node.
//
//	API ─TransferRequest─▶ Org.onStartTransfer: Vault.Transfer(device, from, [to]) ─▶ ResealRequest
//	    ─▶ CommandRecord ACTION_TRANSFER to the outgoing node (still the owner): params name the new owner and
//	       its keys, spec.sealed carries the outgoing node's own envelopes
//	outgoing node: re-seals each envelope to the new owner, hands a Proto rig to the new owner's
//	    miner-signing key, reports SUCCEEDED with the new envelopes (sealing.FormatResealed)
//	CommandTracker.takeResealed: Vault.CompleteTransfer(device, from, envelopes) (the old envelopes are
//	    deleted only now) ─transferResealed─▶ Org.onTransferResealed: the device record names the new node,
//	    both nodes get a new ownership map (HelloAck): the new one starts polling it, the old one's gate
//	    refuses its commands from then on (REFUSED_OWNERSHIP).
//
// A transfer that fails on the node leaves everything as it was (the vault's transfer stays pending until
// retried: the same request resumes it). Devices of a warm-standby pair are moved by changing the pair.

// ErrInvalidTransfer: a transfer that cannot start (same node, paired device, no vault, ...).
var ErrInvalidTransfer = errors.New("invalid transfer")

// TransferRequest asks to move one device to node To.
type TransferRequest struct {
	MinerID string
	To      string
	// ToKey is the new owner's credential key; ToSigningKey its ed25519 miner-signing public key (a Proto
	// rig is handed over to it).
	ToKey        credentials.NodeKey
	ToSigningKey []byte
	Actor        string
}

// TransferStarted answers a TransferRequest.
type TransferStarted struct {
	CommandID string   `json:"command_id"`
	MinerID   string   `json:"miner_id"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Reseal    int      `json:"reseal"`               // envelopes the outgoing node re-seals
	Lost      []string `json:"unsealable,omitempty"` // purposes no trusted node can re-seal: enter them again
}

// transferVault is the part of server/credentials.Vault a transfer uses.
type transferVault interface {
	Transfer(deviceID, from string, to []credentials.NodeKey) (credentials.ResealRequest, error)
	ResealWork(deviceID, by string) (credentials.ResealRequest, error)
	CompleteTransfer(deviceID, by string, envs []*sealing.Envelope) error
	Status(deviceID string) (credentials.Status, error)
}

type startTransfer struct{ req TransferRequest }

// transferResealed: the vault took the outgoing node's envelopes; move the ownership map.
type transferResealed struct{ miner, from, to, commandID string }

// removeDevices tells a Node actor it no longer owns these devices.
type removeDevices struct{ ids []string }

// trackerOrg gives the CommandTracker the Org's PID (transfer completions go back to it).
type trackerOrg struct{ pid *actor.PID }

// TransferDevice starts moving a device to another node; it returns once the command is queued.
func (f *Fleet) TransferDevice(ctx context.Context, req TransferRequest) (TransferStarted, error) {
	return ask[TransferStarted](ctx, f, toOrg, &startTransfer{req: req})
}

func (o *Org) onStartTransfer(ctx actor.Context, m *startTransfer) {
	res, err := o.startTransfer(ctx, m.req)
	if err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(res)
}

func (o *Org) startTransfer(ctx actor.Context, req TransferRequest) (TransferStarted, error) {
	d, ok := o.devices[req.MinerID]
	if !ok {
		return TransferStarted{}, &UnknownMinersError{IDs: []string{req.MinerID}}
	}
	from := d.device.GetNodeId()
	tv, ok := o.cfg.Vault.(transferVault)
	switch {
	case !ok || o.cfg.Vault == nil:
		return TransferStarted{}, fmt.Errorf("%w: this server has no credential vault", ErrInvalidTransfer)
	case store.ValidNodeID(req.To) != nil:
		return TransferStarted{}, fmt.Errorf("%w: target node %q", ErrInvalidNode, req.To)
	case req.To == from:
		return TransferStarted{}, fmt.Errorf("%w: %s already belongs to node %s", ErrInvalidTransfer, req.MinerID, from)
	case o.pairs.ofDevice[req.MinerID] != "":
		return TransferStarted{}, fmt.Errorf("%w: %s belongs to warm-standby pair %s; change the pair instead", ErrInvalidTransfer,
			req.MinerID, o.pairs.ofDevice[req.MinerID])
	case req.ToKey.NodeID != req.To:
		return TransferStarted{}, fmt.Errorf("%w: the credential key given is node %s's, not %s's", ErrInvalidTransfer, req.ToKey.NodeID, req.To)
	}
	rr, err := tv.Transfer(req.MinerID, from, []credentials.NodeKey{req.ToKey})
	if errors.Is(err, credentials.ErrTransferPending) {
		rr, err = tv.ResealWork(req.MinerID, from) // a retry resumes the transfer in progress
	}
	switch {
	case errors.Is(err, credentials.ErrUnknownDevice):
		rr, err = credentials.ResealRequest{DeviceID: req.MinerID, From: from, Done: true}, nil
	case errors.Is(err, credentials.ErrNodeRevoked), errors.Is(err, credentials.ErrNotOwner), errors.Is(err, credentials.ErrWrongOrg),
		errors.Is(err, credentials.ErrInvalidOwners):
		return TransferStarted{}, fmt.Errorf("%w: %v", ErrInvalidTransfer, err)
	case err != nil:
		return TransferStarted{}, fmt.Errorf("%w: start transfer of %s: %v", ErrStore, req.MinerID, err)
	}
	for _, it := range rr.Items {
		if it.To.NodeID != req.To {
			return TransferStarted{}, fmt.Errorf("%w: a transfer of %s to %s is already in progress", ErrInvalidTransfer, req.MinerID, it.To.NodeID)
		}
	}
	now := o.cfg.Clock.Now()
	rec := NewCommandRecord(NewCommandID(now), CommandRequest{MinerIDs: []string{req.MinerID}, Action: pb.Action_ACTION_TRANSFER, Actor: req.Actor}, now)
	spec := rec.GetSpec()
	spec.Params = map[string]string{
		sealing.ParamTransferTo:            req.To,
		sealing.ParamTransferCredentialKey: base64.StdEncoding.EncodeToString(req.ToKey.PublicKey),
	}
	if d.device.GetProtocol() == pb.Protocol_PROTOCOL_PROTO && len(req.ToSigningKey) > 0 {
		spec.Params[sealing.ParamTransferSigningKey] = base64.StdEncoding.EncodeToString(req.ToSigningKey)
	}
	for _, it := range rr.Items {
		raw, err := it.Source.MarshalBinary()
		if err != nil {
			return TransferStarted{}, fmt.Errorf("%w: envelope %s/%s: %v", ErrStore, req.MinerID, it.Purpose, err)
		}
		spec.Sealed = append(spec.Sealed, &pb.SealedSecret{MinerId: req.MinerID, Purpose: it.Purpose, Envelope: raw})
	}
	if err := o.cfg.Store.PutCommand(rec); err != nil {
		return TransferStarted{}, fmt.Errorf("%w: %v", ErrStore, err)
	}
	id := rec.GetCommandId()
	ctx.Send(o.tracker, &trackCommand{rec: rec})
	ctx.Send(o.node(ctx, from), &enqueueCommand{commandID: id, actor: req.Actor, minerIDs: []string{req.MinerID}, spec: spec, issuedAt: now})
	o.cfg.Metrics.commandIssued()
	o.log.Info("device transfer started", slog.String("command", id), slog.String("miner", req.MinerID), slog.String("node", from),
		slog.String("to", req.To), slog.Int("reseal", len(rr.Items)), slog.Any("unsealable", rr.Unsealable))
	return TransferStarted{CommandID: id, MinerID: req.MinerID, From: from, To: req.To, Reseal: len(rr.Items), Lost: rr.Unsealable}, nil
}

// onTransferResealed moves the device to its new node once the vault took the re-sealed envelopes.
func (o *Org) onTransferResealed(ctx actor.Context, m *transferResealed) {
	d, ok := o.devices[m.miner]
	if !ok || d.device.GetNodeId() != m.from {
		o.log.Warn("transfer completion for a device that moved meanwhile", slog.String("miner", m.miner), slog.String("node", m.from),
			slog.String("command", m.commandID))
		return
	}
	nd := proto.Clone(d.device).(*pb.Device)
	nd.NodeId, nd.LoginEnvelope = m.to, nil
	o.stampSites([]*pb.Device{nd})
	if err := o.cfg.Store.Apply(store.Batch{Devices: []*pb.Device{nd}}); err != nil {
		o.log.Error("transfer: the new owner was not recorded", slog.String("miner", m.miner), slog.String("to", m.to), slog.Any("err", err))
		return
	}
	o.register(ctx, []*pb.Device{nd})
	ctx.Send(o.node(ctx, m.from), &removeDevices{ids: []string{m.miner}})
	o.log.Info("device transferred", slog.String("miner", m.miner), slog.String("node", m.from), slog.String("to", m.to),
		slog.String("command", m.commandID))
}

// onRemoveDevices drops devices the node no longer owns and sends it its new ownership map.
func (n *Node) onRemoveDevices(ctx actor.Context, m *removeDevices) {
	for _, id := range m.ids {
		delete(n.devices, id)
	}
	n.sendOwnership(ctx)
	n.pushStatus(ctx)
}

// takeResealed handles a transfer command's results before they are recorded: for each miner the outgoing
// node re-sealed, the vault takes the envelopes (CompleteTransfer) and the Org moves the device; the
// result keeps the node's summary only. A result whose envelopes the vault refuses becomes FAILED.
func (t *CommandTracker) takeResealed(ctx actor.Context, rec *pb.CommandRecord, m *commandReport) {
	if rec.GetSpec().GetAction() != pb.Action_ACTION_TRANSFER {
		return
	}
	to := rec.GetSpec().GetParams()[sealing.ParamTransferTo]
	tv, _ := t.cfg.Vault.(transferVault)
	for i, r := range m.results {
		if r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED || !slices.Contains(rec.GetMinerIds(), r.GetMinerId()) {
			continue
		}
		r = proto.Clone(r).(*pb.MinerResult)
		m.results[i] = r
		summary, envs, _, err := sealing.ParseResealed(r.GetMessage())
		r.Message = summary
		if err == nil && tv == nil {
			err = errors.New("this server has no credential vault")
		}
		if err == nil {
			err = t.completeTransfer(tv, r.GetMinerId(), m.node, envs)
		}
		if err != nil {
			r.Code, r.Message = pb.ResultCode_RESULT_CODE_FAILED, summary+"; the cloud did not take the re-sealed credentials: "+err.Error()
			t.log.Error("transfer not completed", slog.String("command", rec.GetCommandId()), slog.String("miner", r.GetMinerId()),
				slog.String("node", m.node), slog.Any("err", err))
			continue
		}
		if t.org != nil {
			ctx.Send(t.org, &transferResealed{miner: r.GetMinerId(), from: m.node, to: to, commandID: rec.GetCommandId()})
		}
	}
}

// completeTransfer uploads by's envelopes of miner's transfer; with no transfer pending (nothing to
// re-seal, done at once) and no envelopes there is nothing to upload.
func (t *CommandTracker) completeTransfer(tv transferVault, miner, by string, envs []*sealing.Envelope) error {
	st, err := tv.Status(miner)
	if errors.Is(err, credentials.ErrUnknownDevice) && len(envs) == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Transfer == nil && len(envs) == 0 {
		return nil
	}
	return tv.CompleteTransfer(miner, by, envs)
}
