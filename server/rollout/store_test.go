package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/server/store"
)

func openStore(t *testing.T, dir string) *store.Badger {
	t.Helper()
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func managerOn(t *testing.T, f *twinFleet, st Store) *Manager {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock, cfg.PollInterval, cfg.Store = f.clk, 100*time.Millisecond, st
	m, err := NewManager(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitBatch waits (real time) until the rollout's batch i is in state.
func waitBatch(t *testing.T, m *Manager, id string, i int, state string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := m.Get(id); err == nil && st.Batches[i].State == state {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	st, _ := m.Get(id)
	t.Fatalf("batch %d never %s: %+v", i, state, st.Batches[i])
}

// TestRolloutResumesAfterRestart: a server stopped while a batch settles resumes the rollout at the next
// start from that batch, issuing its update under the same key (the same command, no second update), and
// finishes it; a Badger directory carries it across.
func TestRolloutResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 6, func(int) string { return "s" })
	st := openStore(t, dir)
	m := managerOn(t, f, st)
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9, Settle: time.Hour, Actor: "op"})
	if err != nil {
		t.Fatal(err)
	}
	waitBatch(t, m, id, 0, BatchSettling)
	m.Stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	defer st.Close()
	m = managerOn(t, f, st)
	defer m.Stop()
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(id)
	if err != nil || got.State != StateRunning || got.Actor != "op" || got.Batches[0].CommandID == "" {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	end := driveStep(t, m, clk, id, time.Minute)
	if end.State != StateSucceeded {
		t.Fatalf("resumed rollout: %s %q", end.State, end.Reason)
	}
	if len(f.issued) != 3 {
		t.Fatalf("%d updates issued for 3 batches: %v", len(f.issued), f.issued)
	}
	// Finished rollouts are listed after another restart, and not run again.
	m.Stop()
	m2 := managerOn(t, f, st)
	defer m2.Stop()
	if err := m2.Resume(); err != nil {
		t.Fatal(err)
	}
	if again, err := m2.Get(id); err != nil || again.State != StateSucceeded {
		t.Fatalf("after a second restart: %+v %v", again, err)
	}
	if len(f.issued) != 3 {
		t.Fatal("a finished rollout ran again")
	}
}

// TestResumedBatchJudgedByPreUpdateHashrate: the hashrate read before the update is stored with the rollout,
// so a batch resumed after its update is still judged against it (read afresh, the fallen hashrate would
// compare with itself and pass).
func TestResumedBatchJudgedByPreUpdateHashrate(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 4, func(int) string { return "s" })
	f.factor["m01"] = 0.5
	st := openStore(t, dir)
	m := managerOn(t, f, st)
	id, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9, Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitBatch(t, m, id, 0, BatchSettling)
	m.Stop()
	m = managerOn(t, f, st)
	defer m.Stop()
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	end := driveStep(t, m, clk, id, time.Minute)
	if end.State != StateStopped || !strings.Contains(end.Reason, "m01") || !strings.Contains(end.Reason, "50%") {
		t.Fatalf("%s %q, want stopped on m01 at 50%%", end.State, end.Reason)
	}
	_ = st.Close()
}

// TestResumeSkipsUnreadableRecords: a corrupt or inconsistent record is skipped with an error logged; the
// good ones resume.
func TestResumeSkipsUnreadableRecords(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 2, func(int) string { return "s" })
	st := openStore(t, t.TempDir())
	defer st.Close()
	m := managerOn(t, f, st)
	id, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 1, MinHashrateRatio: 0.9, Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitBatch(t, m, id, 0, BatchSettling)
	m.Stop()
	for k, v := range map[string]string{
		"ro-garbage":    "{not json",
		"ro-nobatches":  `{"status":{"id":"ro-nobatches","state":"running"},"firmware":{}}`,
		"ro-badfw":      `{"status":{"id":"ro-badfw","state":"running","batches":[{"index":0}]},"firmware":"x"}`,
		"ro-toomanypre": `{"status":{"id":"ro-toomanypre","state":"running","batches":[{"index":0}]},"firmware":{},"pre":[{},{}]}`,
	} {
		if err := st.PutRollout(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	m = managerOn(t, f, st)
	defer m.Stop()
	if err := m.Resume(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"ro-garbage", "ro-nobatches", "ro-badfw", "ro-toomanypre"} {
		if _, err := m.Get(bad); err == nil {
			t.Errorf("%s was loaded", bad)
		}
	}
	if end := driveStep(t, m, clk, id, time.Minute); end.State != StateSucceeded {
		t.Fatalf("good rollout: %s %q", end.State, end.Reason)
	}
	if err := st.PutRollout("bad/id", nil); err == nil {
		t.Fatal("a rollout id with '/' was stored")
	}
}
