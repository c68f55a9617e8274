package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/credentials"
)

// RevokeNode revokes a node everywhere it is trusted, in this order: the registry (its next session,
// stream, token refresh and api_key are refused; persisted), the gateway (its open streams end now), then
// the vault (every credential it could read becomes revocation-pending; the envelopes it held are deleted).
// Each step is idempotent, so a retry after a failure finishes the job. Split mode only.
func (s *Server) RevokeNode(ctx context.Context, nodeID string) (api.NodeRevocation, error) {
	if s.registry == nil {
		return api.NodeRevocation{}, fmt.Errorf("revoke node %s: no node registry (combined mode)", nodeID)
	}
	if err := s.registry.Revoke(nodeID); err != nil {
		return api.NodeRevocation{}, fmt.Errorf("revoke node %s: %w", nodeID, err)
	}
	out := api.NodeRevocation{NodeID: nodeID, StreamsCut: s.gw.CutNode(nodeID, "node revoked")}
	rep, err := s.vault.RevokeNode(nodeID)
	if err != nil {
		return out, fmt.Errorf("revoke node %s: registry and gateway done, vault: %w", nodeID, err)
	}
	out.Devices, out.CancelledTransfers = rep.Devices, rep.CancelledTransfers
	s.log.Warn("node revoked", slog.String("node", nodeID), slog.Int("streams_cut", out.StreamsCut),
		slog.Int("devices_pending_rotation", len(rep.Devices)))
	if len(rep.Devices) > 0 {
		// Rotate at once what a trusted owner can rotate (server/rotation.go); the rest stays listed.
		if _, err := s.RotatePending(ctx); err != nil {
			s.log.Error("rotation sweep after a revocation", slog.String("node", nodeID), slog.Any("err", err))
		}
	}
	return out, nil
}

// credentialAdmin serves the API's credential endpoints from the server.
type credentialAdmin struct{ s *Server }

var _ api.Credentials = credentialAdmin{}

func (c credentialAdmin) RevokeNode(ctx context.Context, nodeID string) (api.NodeRevocation, error) {
	return c.s.RevokeNode(ctx, nodeID)
}

func (c credentialAdmin) PendingCredentials() ([]credentials.Status, error) {
	return c.s.vault.Pending()
}

func (c credentialAdmin) DeviceCredentials(id string) (credentials.Status, error) {
	return c.s.vault.Status(id)
}
