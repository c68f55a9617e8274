package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/api"
	"github.com/hashfleet/hashfleet/server/artifacts"
	"github.com/hashfleet/hashfleet/server/gateway"
	"github.com/hashfleet/hashfleet/server/grains"
	"github.com/hashfleet/hashfleet/server/rollout"
	"github.com/hashfleet/hashfleet/server/store"
)

// newArtifacts opens the artifact store in ArtifactsDir (default DataDir/artifacts) and the gateway's
// Artifacts service, which authenticates nodes as the gateway does. Without either directory (in-memory
// server) there is no store: nil.
func newArtifacts(cfg Config, gw *gateway.Gateway, fleet *grains.Fleet) (*artifacts.Service, error) {
	dir := cfg.ArtifactsDir
	if dir == "" && cfg.DataDir != "" {
		dir = filepath.Join(cfg.DataDir, "artifacts")
	}
	if dir == "" {
		return nil, nil
	}
	st, err := artifacts.OpenStore(dir, cfg.MaxArtifactBytes)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	acfg := artifacts.DefaultConfig()
	acfg.Logger = cfg.Logger
	acfg.Authenticate = func(ctx context.Context) (string, error) { return gw.AuthenticateStream(ctx, "artifacts") }
	acfg.CommandNames = func(ctx context.Context, node, command, sha string) error {
		return commandNamesArtifact(ctx, fleet, node, command, sha)
	}
	acfg.CommandAsks = func(ctx context.Context, node, command string) error {
		return commandAsksUpload(ctx, fleet, node, command)
	}
	return artifacts.NewService(acfg, st)
}

// newArtifactSweeper runs the artifact store's retention (nil without a store): what an active command or a
// running rollout names is in use.
func newArtifactSweeper(cfg Config, svc *artifacts.Service, st store.Store, ro *rollout.Manager) (*artifacts.Sweeper, error) {
	if svc == nil {
		return nil, nil
	}
	p := artifacts.DefaultSweepPolicy()
	if cfg.ArtifactRetention != 0 {
		p.BlobAge = cfg.ArtifactRetention
	}
	p.MaxBytes = cfg.MaxArtifactStoreBytes
	w, err := artifacts.NewSweeper(artifacts.SweeperConfig{Policy: p, Clock: cfg.Clock, Logger: cfg.Logger,
		InUse: func() (map[string]bool, error) {
			used := ro.RunningArtifacts()
			active, err := st.ActiveCommands()
			if err != nil {
				return nil, err
			}
			for _, c := range active {
				if sha := c.GetSpec().GetFirmware().GetSha256(); sha != "" {
					used[sha] = true
				}
			}
			return used, nil
		}}, svc.Store())
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return w, nil
}

// commandAsksUpload allows a put bound to a download_logs command issued to node.
func commandAsksUpload(ctx context.Context, fleet *grains.Fleet, node, command string) error {
	rec, err := fleet.Command(ctx, command)
	if err != nil {
		return fmt.Errorf("%w: command %s: %v", artifacts.ErrNotGranted, command, err)
	}
	if rec.GetSpec().GetAction() != pb.Action_ACTION_DOWNLOAD_LOGS {
		return fmt.Errorf("%w: command %s asks for no upload", artifacts.ErrNotGranted, command)
	}
	if _, ok := rec.GetNodeSeqs()[node]; !ok {
		return fmt.Errorf("%w: command %s was not issued to node %s", artifacts.ErrNotGranted, command, node)
	}
	return nil
}

// commandNamesArtifact allows a fetch bound to a firmware update issued to node that names sha.
func commandNamesArtifact(ctx context.Context, fleet *grains.Fleet, node, command, sha string) error {
	rec, err := fleet.Command(ctx, command)
	if err != nil {
		return fmt.Errorf("%w: command %s: %v", artifacts.ErrNotGranted, command, err)
	}
	if rec.GetSpec().GetFirmware().GetSha256() != sha {
		return fmt.Errorf("%w: command %s names no such artifact", artifacts.ErrNotGranted, command)
	}
	if _, ok := rec.GetNodeSeqs()[node]; !ok {
		return fmt.Errorf("%w: command %s was not issued to node %s", artifacts.ErrNotGranted, command, node)
	}
	return nil
}

// apiArtifacts is the API's view of the store (a nil interface when there is none).
func apiArtifacts(svc *artifacts.Service) api.Artifacts {
	if svc == nil {
		return nil
	}
	return svc.Store()
}

// Artifacts is the gateway's Artifacts service (register it with pb.RegisterArtifactsServer next to the
// gateway); nil for an in-memory server.
func (s *Server) Artifacts() *artifacts.Service { return s.artifacts }

// newRollouts is the rolling firmware update manager over the fleet, on the server's clock.
func newRollouts(cfg Config, fleet *grains.Fleet, st rollout.Store) (*rollout.Manager, error) {
	rc := rollout.DefaultConfig()
	rc.Clock, rc.Logger = cfg.Clock, cfg.Logger
	rc.Store = st
	if cfg.RolloutPollInterval > 0 {
		rc.PollInterval = cfg.RolloutPollInterval
	}
	m, err := rollout.NewManager(rc, fleet)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return m, nil
}
