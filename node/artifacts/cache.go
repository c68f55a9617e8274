package artifacts

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// The node keeps each downloaded artifact as Dir/<sha256> so that the miners of a firmware update (and the
// batches of a rollout) share one fetch. Nothing else removes them, so the client sweeps its own directory
// at start and before each download: a download unused (fetched or reused) for CacheAge goes, and so does a
// partial download untouched for PartialAge (a command that was abandoned mid-fetch). A file whose download
// is running (its sha is locked) is never touched.

// tryLockFile takes sha's download lock if it is free.
func (c *Client) tryLockFile(sha string) (func(), bool) {
	l := c.fileLock(sha)
	select {
	case l <- struct{}{}:
		return func() { <-l }, true
	default:
		return nil, false
	}
}

// markUsed sets a download's time to now, so the sweep counts its age from its last use.
func (c *Client) markUsed(sha string) {
	now := c.cfg.Clock.Now()
	_ = os.Chtimes(c.Path(sha), now, now)
}

// sweepCache removes downloads and partial downloads past their age. It returns how many files it removed.
func (c *Client) sweepCache() int {
	now := c.cfg.Clock.Now()
	removed := 0
	for _, d := range []struct {
		dir  string
		age  time.Duration
		path func(string) string
	}{{c.cfg.Dir, c.cfg.CacheAge, c.Path}, {filepath.Join(c.cfg.Dir, "partial"), c.cfg.PartialAge, c.partialPath}} {
		if d.age < 0 {
			continue
		}
		entries, err := os.ReadDir(d.dir)
		if err != nil {
			c.log.Warn("artifact cache sweep: cannot list", slog.String("dir", d.dir), slog.Any("error", err))
			continue
		}
		for _, e := range entries {
			sha := e.Name()
			if !e.Type().IsRegular() || len(sha) != 64 {
				continue
			}
			if _, err := hex.DecodeString(sha); err != nil {
				continue // not a file this client made
			}
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) <= d.age {
				continue
			}
			unlock, ok := c.tryLockFile(sha)
			if !ok {
				continue // being downloaded
			}
			err = os.Remove(d.path(sha))
			unlock()
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.log.Warn("artifact cache sweep: cannot remove", slog.String("sha256", sha), slog.Any("error", err))
				continue
			}
			removed++
		}
	}
	if removed > 0 {
		c.log.Info("artifact cache swept", slog.Int("removed", removed))
	}
	return removed
}
