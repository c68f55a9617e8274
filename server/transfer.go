package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashfleet/hashfleet/server/credentials"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/registry"
	"github.com/hashfleet/hashfleet/server/store"
)

// TransferDevice moves a device to node to: it resolves the target's credential and miner-signing keys
// from its enrollment record (a revoked or unconfirmed node is refused) and starts the transfer in the
// fleet (grains.Fleet.TransferDevice: the outgoing node re-seals, the vault completes, the ownership map
// moves). Split mode only.
func (s *Server) TransferDevice(ctx context.Context, minerID, to, actor string) (grains.TransferStarted, error) {
	if s.registry == nil {
		return grains.TransferStarted{}, fmt.Errorf("transfer %s: no node registry (combined mode)", minerID)
	}
	rec, err := s.store.NodeRecord(to)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalidKey):
		return grains.TransferStarted{}, fmt.Errorf("transfer %s to %q: %w", minerID, to, registry.ErrUnknownNode)
	case err != nil:
		return grains.TransferStarted{}, fmt.Errorf("transfer %s to %q: %w", minerID, to, err)
	}
	key, err := credentials.KeyFromRecord(rec)
	if err != nil {
		return grains.TransferStarted{}, fmt.Errorf("transfer %s to %q: %w: %v", minerID, to, grains.ErrInvalidTransfer, err)
	}
	return s.fleet.TransferDevice(ctx, grains.TransferRequest{MinerID: minerID, To: to, ToKey: key,
		ToSigningKey: slices.Clone(rec.GetMinerSigningPublicKey()), Actor: actor})
}

func (c credentialAdmin) TransferDevice(ctx context.Context, minerID, to, actor string) (grains.TransferStarted, error) {
	return c.s.TransferDevice(ctx, minerID, to, actor)
}
