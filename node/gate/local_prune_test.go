package gate

import (
	"slices"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

func logIDs(t *testing.T, wl *watchedLog) []string {
	t.Helper()
	var ids []string
	if err := wl.LocalCommands(false, func(e *pb.LocalLogEntry) bool {
		ids = append(ids, e.GetCommand().GetCommandId())
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestLocalLogRetention: a sweep deletes finished, reported commands past the retention, keeps one that is
// still the newest local action on a miner's field whatever its age, and frees the idempotency key.
func TestLocalLogRetention(t *testing.T) {
	h, wl := newLocalHarness(t)
	h.startLocalGate(&LocalEnv{Log: wl, HLC: mustHLC(t, h.clk), Retention: 24 * time.Hour, PruneEvery: time.Hour})
	submit := func(key string, miners ...string) string {
		r, err := h.submit(&LocalSubmit{IdempotencyKey: key, Actor: "local:admin", MinerIDs: miners, Spec: stopSpec()})
		if err != nil {
			t.Fatal(err)
		}
		return r.CommandID
	}
	old := submit("k-old", "m-1")     // superseded by newer on m-1 below
	newestM2 := submit("k-m2", "m-2") // the newest on m-2: kept whatever its age
	testutil.Eventually(t, "both reported", func() bool { return len(h.localEvents()) == 2 })
	h.clk.Advance(2 * time.Hour)
	newer := submit("k-newer", "m-1")
	testutil.Eventually(t, "the third reported", func() bool { return len(h.localEvents()) == 3 })

	h.clk.Advance(23 * time.Hour) // old and newestM2 are 25 h old, newer 23 h
	testutil.Eventually(t, "the old command swept", func() bool {
		return slices.Equal(logIDs(t, wl), []string{newestM2, newer})
	})
	if _, err := wl.LocalCommand(old); err == nil {
		t.Fatal("the swept command is still found by id")
	}
	// Its idempotency key is free: the same request runs again as a new command.
	again := submit("k-old", "m-1")
	if again == old {
		t.Fatal("a swept key answered with the deleted command")
	}
	testutil.Eventually(t, "the re-run reported", func() bool { return len(h.localEvents()) == 4 })

	// The next day newer is past the retention but superseded by the re-run; newestM2 still stays.
	h.clk.Advance(26 * time.Hour)
	testutil.Eventually(t, "newer swept, the newest per miner kept", func() bool {
		return slices.Equal(logIDs(t, wl), []string{newestM2, again})
	})
}

func TestLocalLogKeptForeverWithNegativeRetention(t *testing.T) {
	h, wl := newLocalHarness(t)
	h.startLocalGate(&LocalEnv{Log: wl, HLC: mustHLC(t, h.clk), Retention: -1, PruneEvery: time.Hour})
	for _, k := range []string{"a", "b"} {
		if _, err := h.submit(&LocalSubmit{IdempotencyKey: k, Actor: "local:admin", MinerIDs: []string{"m-1"}, Spec: stopSpec()}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "reported", func() bool { return len(h.localEvents()) == 2 })
	h.clk.Advance(400 * 24 * time.Hour)
	h.clk.Advance(time.Hour)
	if n := len(logIDs(t, wl)); n != 2 {
		t.Fatalf("%d entries left, want both kept", n)
	}
}

func TestLocalPrunable(t *testing.T) {
	e := func(id string, created, finished int64, done, reported bool) *pb.LocalLogEntry {
		return &pb.LocalLogEntry{Command: &pb.LocalCommand{CommandId: id}, CreatedAtUnixMs: created, FinishedAtUnixMs: finished,
			Done: done, Reported: reported}
	}
	entries := []*pb.LocalLogEntry{
		e("done", 10, 20, true, true),
		e("running", 11, 0, false, false),
		e("unreported", 12, 30, true, false),
		e("kept", 13, 30, true, true),
		e("finished-late", 14, 200, true, true),
		e("done2", 15, 40, true, true),
		e("young", 100, 110, true, true),
		e("after-young", 15, 20, true, true),
	}
	keep := func(id string) bool { return id == "kept" }
	if got := localPrunable(entries, keep, 100, 10); !slices.Equal(got, []string{"done", "done2"}) {
		t.Fatalf("prunable %v", got)
	}
	if got := localPrunable(entries, keep, 100, 1); !slices.Equal(got, []string{"done"}) {
		t.Fatalf("limit 1: %v", got)
	}
}
