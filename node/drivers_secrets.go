package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/messages/sealing"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/node/credentials"
	"google.golang.org/protobuf/proto"
)

// Command secrets on the node: a command's spec carries its secrets (update_pools' pool passwords) only as
// envelopes (CommandSpec.sealed), one per (owning node, miner, purpose). The driver of each miner is wrapped
// so that Execute opens the envelope bound to this node, this miner and the pool's purpose just before the
// write, hands the driver a copy of the spec with the password filled in, and drops the copy when the write
// returns. Everything before (the CommandGate, the node's store, the write log) and after (results, audit)
// sees the sealed spec only, so the node never persists a plaintext.
//
// Limits: the drivers take a pool password as a Go string (pb.Pool.password), which cannot be wiped; the
// opened bytes are wiped, the string copy lives until the collector reclaims it.

// ErrSealedSecret: a command's sealed secret could not be used (none sealed to this node, a duplicate, a
// malformed envelope, or one this node's key does not open).
var ErrSealedSecret = errors.New("sealed command secret unusable")

// secretsDriver opens a command's sealed secrets for the wrapped driver.
type secretsDriver struct {
	miners.Driver
	minerID string
	nodeID  string
	op      *credentials.Opener // nil: this node has no credential key
}

// withSecrets wraps drv so that commands carrying sealed secrets have them opened just in time.
func (d *Drivers) withSecrets(dev *pb.Device, drv miners.Driver, op *credentials.Opener) miners.Driver {
	return &secretsDriver{Driver: drv, minerID: dev.GetMinerId(), nodeID: d.NodeID, op: op}
}

// Execute opens spec's sealed secrets bound to this node and miner, runs the command with them, and drops
// the opened copy.
func (s *secretsDriver) Execute(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	if spec.GetAction() == pb.Action_ACTION_TRANSFER {
		return s.transfer(ctx, spec)
	}
	if len(spec.GetSealed()) == 0 {
		return s.Driver.Execute(ctx, spec)
	}
	open, err := openSpec(s.op, s.nodeID, s.minerID, spec)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, p := range open.GetPools() {
			p.Password = ""
		}
		delete(open.Params, miners.ParamNewPassword)
	}()
	return s.Driver.Execute(ctx, open)
}

// openSpec returns a copy of spec whose pools carry the passwords sealed to (nodeID, minerID), and no sealed
// secrets. A pool whose purpose has envelopes for other nodes but none for this one is refused: the cloud
// meant it to have a password this node cannot read.
func openSpec(op *credentials.Opener, nodeID, minerID string, spec *pb.CommandSpec) (*pb.CommandSpec, error) {
	mine := map[string]*sealing.Envelope{}
	sealedFor := map[string]bool{}
	for _, s := range spec.GetSealed() {
		if s.GetMinerId() != minerID {
			continue
		}
		sealedFor[s.GetPurpose()] = true
		env, err := sealing.Parse(s.GetEnvelope())
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w: %w", s.GetPurpose(), minerID, ErrSealedSecret, err)
		}
		if env.NodeID != nodeID {
			continue
		}
		if env.DeviceID != minerID || env.Purpose != s.GetPurpose() {
			return nil, fmt.Errorf("%s of %s: envelope is bound to %s/%s: %w", s.GetPurpose(), minerID, env.DeviceID, env.Purpose, ErrSealedSecret)
		}
		if _, dup := mine[s.GetPurpose()]; dup {
			return nil, fmt.Errorf("%s of %s: two envelopes for this node: %w", s.GetPurpose(), minerID, ErrSealedSecret)
		}
		mine[s.GetPurpose()] = env
	}
	out := proto.Clone(spec).(*pb.CommandSpec)
	out.Sealed = nil
	for i, p := range out.GetPools() {
		purpose := sealing.PoolPassword(i)
		env, ok := mine[purpose]
		switch {
		case !ok && sealedFor[purpose]:
			return nil, fmt.Errorf("%s of %s: none sealed to node %s: %w", purpose, minerID, nodeID, ErrSealedSecret)
		case !ok:
			continue
		case op == nil:
			return nil, fmt.Errorf("%s of %s: %w", purpose, minerID, ErrNoCredentialKey)
		}
		err := op.Use(env, minerID, purpose, func(secret []byte) error {
			p.Password = string(secret)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w: %w", purpose, minerID, ErrSealedSecret, err)
		}
	}
	if out.GetAction() == pb.Action_ACTION_UPDATE_PASSWORD {
		if err := openNewLogin(op, mine[sealing.PurposeMinerLoginNew], nodeID, minerID, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NewForCommands builds dev's driver (New) wrapped so that commands carrying sealed secrets have them opened
// just in time: the node's DriverFactory.
func (d *Drivers) NewForCommands(dev *pb.Device) (miners.Driver, error) {
	drv, err := d.New(dev)
	if err != nil {
		return nil, err
	}
	op, err := d.ownerOpener()
	if err != nil {
		drv.Close()
		return nil, err
	}
	return d.withSecrets(dev, drv, op), nil
}
