package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/artifacts"
	"github.com/hashfleet/hashfleet/server/store"
)

// TestArtifactSweepAtStart: the server sweeps its artifact store when it starts; an artifact unused past the
// retention goes, one an active firmware command still names stays.
func TestArtifactSweepAtStart(t *testing.T) {
	dir := t.TempDir()
	fakeNow := time.Unix(1_700_000_000, 0) // the harness clock
	as, err := artifacts.OpenStore(filepath.Join(dir, "artifacts"), 0)
	if err != nil {
		t.Fatal(err)
	}
	var shas []string
	for _, body := range []string{"firmware still being installed", "firmware nobody used for months"} {
		m, err := as.Put(strings.NewReader(body), "")
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, m.SHA256)
		old := fakeNow.Add(-100 * 24 * time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "artifacts", "blobs", m.SHA256), old, old); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutCommand(&pb.CommandRecord{CommandId: "c-fw", CreatedAtUnixMs: fakeNow.UnixMilli(), Spec: &pb.CommandSpec{Action: pb.Action_ACTION_FIRMWARE_UPDATE,
		Firmware: &pb.ArtifactRef{Sha256: shas[0], Size: 30}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t, func(c *Config) { c.DataDir = dir })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, runs := h.srv.sweeper.Last(); runs > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.srv.Artifacts().Store().Stat(shas[0]); err != nil {
		t.Fatalf("the artifact an active command names was swept: %v", err)
	}
	if _, err := h.srv.Artifacts().Store().Stat(shas[1]); err == nil {
		t.Fatal("the unused artifact survived the sweep")
	}
}
