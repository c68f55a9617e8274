package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"google.golang.org/grpc"
)

func shaOf(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func writeAged(t *testing.T, path string, body []byte, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// TestCacheSweep: at start the client removes downloads unused for CacheAge and partial downloads untouched
// for PartialAge, and nothing else; reusing a cached download counts as a use, so it stays.
func TestCacheSweep(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o700); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	now := clk.Now()
	oldFW, reusedFW, freshFW := []byte("firmware from last month"), []byte("firmware a rollout reuses"), []byte("yesterday's firmware")
	files := map[string]time.Time{
		filepath.Join(dir, shaOf(oldFW)):                      now.Add(-8 * 24 * time.Hour),
		filepath.Join(dir, shaOf(reusedFW)):                   now.Add(-6 * 24 * time.Hour),
		filepath.Join(dir, shaOf(freshFW)):                    now.Add(-24 * time.Hour),
		filepath.Join(dir, "partial", shaOf([]byte("gone"))):  now.Add(-25 * time.Hour),
		filepath.Join(dir, "partial", shaOf([]byte("fresh"))): now.Add(-time.Hour),
		filepath.Join(dir, "operator-notes.txt"):              now.Add(-365 * 24 * time.Hour),
	}
	bodies := map[string][]byte{filepath.Join(dir, shaOf(oldFW)): oldFW, filepath.Join(dir, shaOf(reusedFW)): reusedFW,
		filepath.Join(dir, shaOf(freshFW)): freshFW}
	for p, at := range files {
		b := bodies[p]
		if b == nil {
			b = []byte("x")
		}
		writeAged(t, p, b, at)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Dir, cfg.Clock = "n1", dir, clk
	cfg.Dial = func(context.Context) (*grpc.ClientConn, error) { return nil, errors.New("no cloud in this test") }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		filepath.Join(dir, shaOf(oldFW)): false, filepath.Join(dir, shaOf(reusedFW)): true, filepath.Join(dir, shaOf(freshFW)): true,
		filepath.Join(dir, "partial", shaOf([]byte("gone"))): false, filepath.Join(dir, "partial", shaOf([]byte("fresh"))): true,
		filepath.Join(dir, "operator-notes.txt"): true,
	}
	for p, keep := range want {
		if _, err := os.Stat(p); (err == nil) != keep {
			t.Errorf("%s kept %v, want %v", filepath.Base(p), err == nil, keep)
		}
	}
	// A rollout's next batch reuses the 6-day-old download: no fetch, and it counts as used now.
	path, err := c.Download(context.Background(), "c2", &pb.ArtifactRef{Sha256: shaOf(reusedFW), Size: int64(len(reusedFW))})
	if err != nil || path != filepath.Join(dir, shaOf(reusedFW)) {
		t.Fatalf("reuse: %q %v", path, err)
	}
	clk.Advance(3 * 24 * time.Hour) // 9 days after it was fetched, 3 after its reuse
	if n := c.sweepCache(); n != 1 {
		t.Fatalf("second sweep removed %d files, want 1 (yesterday's firmware, now 4 days old, stays; the fresh partial goes)", n)
	}
	if _, err := os.Stat(filepath.Join(dir, shaOf(reusedFW))); err != nil {
		t.Fatalf("the reused download was swept: %v", err)
	}
}

// TestCacheSweepSkipsRunningDownload: a file whose download holds its lock is left alone.
func TestCacheSweepSkipsRunningDownload(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	cfg := DefaultConfig()
	cfg.NodeID, cfg.Dir, cfg.Clock = "n1", dir, clk
	cfg.Dial = func(context.Context) (*grpc.ClientConn, error) { return nil, errors.New("no cloud in this test") }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sha := shaOf([]byte("being fetched"))
	writeAged(t, c.partialPath(sha), []byte("half"), clk.Now().Add(-48*time.Hour))
	unlock, err := c.lockFile(context.Background(), sha)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.sweepCache(); n != 0 {
		t.Fatalf("swept %d files while their download runs", n)
	}
	unlock()
	if n := c.sweepCache(); n != 1 {
		t.Fatalf("swept %d after the download ended, want 1", n)
	}
}
