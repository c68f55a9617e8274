package artifacts

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
)

// downloadLogs has the miner's driver write its logs to a file of the node's, bundles that file as
// <miner>-logs.tar.gz and puts the bundle to the cloud bound to the command. The result message names the
// bundle's sha256 (GET /api/v1/artifacts/{sha}).
func (d *firmwareDriver) downloadLogs(ctx context.Context, spec *pb.CommandSpec) (string, error) {
	cmd := miners.CommandIDFrom(ctx)
	if cmd == "" {
		return "", fmt.Errorf("download logs: no command id")
	}
	dir, err := os.MkdirTemp(d.c.cfg.Dir, "logs-")
	if err != nil {
		return "", fmt.Errorf("download logs: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	raw := filepath.Join(dir, "miner.log")
	if spec.Params == nil {
		spec.Params = map[string]string{}
	}
	spec.Params[miners.ParamLogsPath] = raw
	if _, err := d.Driver.Execute(ctx, spec); err != nil {
		return "", err
	}
	bundle := filepath.Join(dir, d.minerID+"-logs.tar.gz")
	if err := bundleFiles(bundle, d.c.cfg.Clock.Now(), map[string]string{d.minerID + "/kernel.log": raw}); err != nil {
		return "", fmt.Errorf("download logs: bundle: %w", err)
	}
	ref, err := d.c.Upload(ctx, cmd, bundle, filepath.Base(bundle))
	if err != nil {
		return "", fmt.Errorf("download logs: upload: %w", err)
	}
	return fmt.Sprintf("logs uploaded: artifact %s (%d bytes, %s)", ref.GetSha256(), ref.GetSize(), ref.GetName()), nil
}

// bundleFiles writes a tar.gz of files (name in the archive → path on disk).
func bundleFiles(out string, now time.Time, files map[string]string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			_ = f.Close()
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: now}); err != nil {
			_ = f.Close()
			return err
		}
		if _, err := tw.Write(b); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
