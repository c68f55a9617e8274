package bootstrap

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashfleet/hashfleet/node"
	"github.com/hashfleet/hashfleet/node/localui"
	"go.uber.org/fx"
)

// The node's local UI (node/localui) in split mode: HTTPS on --local-ui (default :8443) for the staff on the
// site LAN, served by the node itself so the site stays operable while the WAN is down. Its certificate and
// the local-admin credential live in <DataDir>/localui (0700), apart from the node's identity and cloud
// credentials. Combined mode serves the site from the main UI and starts no local UI.

// LocalUIOff disables the node's local UI (--local-ui off).
const LocalUIOff = "off"

// nodeLocalUIDir is the local UI's directory inside a node's data directory.
const nodeLocalUIDir = "localui"

// LocalUIDir is where a node keeps its local UI's certificate and local-admin credential.
func LocalUIDir(dataDir string) string { return filepath.Join(dataDir, nodeLocalUIDir) }

// SetLocalAdmin sets the local-admin credential of the node in dataDir (`hashfleet node set-local-admin`):
// an argon2id hash in <dataDir>/localui/local-admin.json (0600). It replaces any earlier one; sessions of the
// old credential end. A running node picks it up at the next login.
func SetLocalAdmin(dataDir, user, password string) (string, error) {
	if dataDir == "" {
		return "", fmt.Errorf("--data-dir is required")
	}
	if err := ensureDataDir(dataDir); err != nil {
		return "", err
	}
	dir := LocalUIDir(dataDir)
	if err := localui.SetLocalAdmin(dir, user, password); err != nil {
		return "", err
	}
	return filepath.Join(dir, localui.CredentialFile), nil
}

// localUIAddr is the address to serve the local UI on; "" when it is off.
func localUIAddr(opt string) string {
	if strings.EqualFold(strings.TrimSpace(opt), LocalUIOff) {
		return ""
	}
	return strings.TrimSpace(opt)
}

// serveNodeLocalUI starts the local UI over n once the node runs and stops it before the node stops. A
// listen failure is logged, not fatal: the node's first job is its miners, and the cloud UI still works.
func serveNodeLocalUI(lc fx.Lifecycle, o NodeRunOptions, n *node.Node, nodeID string, log *slog.Logger) (*localui.Server, error) {
	addr := localUIAddr(o.LocalUI)
	if addr == "" {
		return nil, nil
	}
	cfg := localui.DefaultConfig(LocalUIDir(o.DataDir))
	cfg.Addr, cfg.NodeID = addr, nodeID
	if o.LocalUITune != nil {
		o.LocalUITune(&cfg)
	}
	srv, err := localui.New(cfg, localui.Env{Site: n.LocalSite(), Clock: o.Clock, Logger: log, Registerer: o.Registry})
	if err != nil {
		return nil, fmt.Errorf("local UI: %w", err)
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := srv.Start(ctx); err != nil {
				log.Error("the local UI is not served; the site is not operable from the node while the cloud is down",
					slog.String("addr", addr), slog.Any("error", err))
			}
			return nil
		},
		OnStop: func(ctx context.Context) error { return srv.Stop(ctx) },
	})
	return srv, nil
}

// describeLocalUI is the line `hashfleet node run` prints about the local UI.
func describeLocalUI(srv *localui.Server, dataDir string) string {
	if srv == nil || srv.Addr() == nil {
		return "off"
	}
	s := srv.URL() + " (certificate " + srv.Fingerprint() + ")"
	if _, err := localui.LocalAdmin(LocalUIDir(dataDir)); err != nil {
		s += "; no local admin yet: hashfleet node set-local-admin --data-dir " + dataDir
	}
	return s
}

// ReadPasswordFile reads a password from a file: its first line, without the line end.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(line, "\r"), nil
}
