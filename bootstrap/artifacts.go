package bootstrap

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/hashfleet/hashfleet/actors/clock"
	nodeart "github.com/hashfleet/hashfleet/node/artifacts"
	"github.com/hashfleet/hashfleet/node/uplink"
	"google.golang.org/grpc"
)

// nodeArtifactsDir holds the node's downloaded artifacts (firmware images) under its data directory.
const nodeArtifactsDir = "artifacts"

// newNodeArtifacts is the node's artifact client: its own connections to the gateway, authorized like the
// uplink's session (authorize nil: none, combined mode).
func newNodeArtifacts(dataDir, nodeID string, dial func(context.Context) (*grpc.ClientConn, error),
	authorize func(context.Context, *grpc.ClientConn) (uplink.Credential, error), clk clock.Clock, log *slog.Logger) (*nodeart.Client, error) {
	cfg := nodeart.DefaultConfig()
	cfg.NodeID, cfg.Dial, cfg.Dir, cfg.Clock, cfg.Logger = nodeID, dial, filepath.Join(dataDir, nodeArtifactsDir), clk, log
	if authorize != nil {
		cfg.Authorize = func(ctx context.Context, conn *grpc.ClientConn) (string, error) {
			c, err := authorize(ctx, conn)
			return c.Token, err
		}
	}
	return nodeart.New(cfg)
}
