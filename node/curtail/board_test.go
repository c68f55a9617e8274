package curtail

import (
	"sync"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
)

// The board converts only changed statuses, and a list read before a change is never modified by it.
func TestBoardCopyOnWrite(t *testing.T) {
	calls := 0
	b := NewBoard(nil, func(*pb.Device) []string { calls++; return nil })
	sts, samples := boardSite(3)
	b.Replace(sts)
	if calls != 3 {
		t.Fatalf("first refresh converted %d statuses, want 3", calls)
	}
	before := b.Snapshots()
	b.Replace(sts)
	if calls != 3 {
		t.Fatalf("an unchanged refresh converted %d statuses", calls-3)
	}
	if again := b.Snapshots(); &again[0] != &before[0] {
		t.Fatal("an unchanged board built a new list")
	}

	sts[1].Sample, sts[1].LastGood = samples[1][1], samples[1][1]
	b.Replace(sts)
	if calls != 4 {
		t.Fatalf("one new sample converted %d statuses, want 1", calls-3)
	}
	if before[1].PowerW != 3000 {
		t.Fatalf("a list handed out was modified: %+v", before[1])
	}
	after := b.Snapshots()
	if after[1].PowerW != 3001 || after[0].PowerW != 3000 || after[1].ID != "m-00001" {
		t.Fatalf("after: %+v", after)
	}
	sts[2].State = pb.MinerState_MINER_STATE_UNREACHABLE
	b.Update(sts[2])
	if got := b.Snapshots(); got[2].State != pb.MinerState_MINER_STATE_UNREACHABLE || after[2].State != pb.MinerState_MINER_STATE_MINING {
		t.Fatalf("state change: %+v / %+v", got[2], after[2])
	}
}

// Membership changes, duplicates and unknown ids rebuild the list; the board matches the last list given.
func TestBoardMembership(t *testing.T) {
	b := NewBoard(nil, nil)
	sts, _ := boardSite(4)
	ids := func() []string {
		var out []string
		for _, s := range b.Snapshots() {
			out = append(out, s.ID)
		}
		return out
	}
	want := func(w ...string) {
		t.Helper()
		got := ids()
		if len(got) != len(w) {
			t.Fatalf("got %v, want %v", got, w)
		}
		for i := range w {
			if got[i] != w[i] {
				t.Fatalf("got %v, want %v", got, w)
			}
		}
	}
	b.Replace([]miner.Status{sts[3], sts[1], sts[0]})
	want("m-00000", "m-00001", "m-00003")
	// Same size, one id twice: the duplicate's other miner is forgotten.
	b.Replace([]miner.Status{sts[3], sts[3], sts[0]})
	want("m-00000", "m-00003")
	// Same size, an unknown id.
	b.Replace([]miner.Status{sts[2], sts[0]})
	want("m-00000", "m-00002")
	b.Update(sts[1], sts[2])
	want("m-00000", "m-00001", "m-00002")
	b.Remove("m-00001", "nope")
	want("m-00000", "m-00002")
	b.Remove("nope")
	want("m-00000", "m-00002")
	b.Replace(nil)
	want()
}

// Reads run alongside refreshes (race detector).
func TestBoardConcurrentReads(t *testing.T) {
	b := NewBoard(nil, nil)
	sts, samples := boardSite(200)
	b.Replace(sts)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var sum float64
				for _, s := range b.Snapshots() {
					sum += s.PowerW
				}
				if sum == 0 {
					t.Error("empty read")
					return
				}
			}
		})
	}
	for n := range 200 {
		for i := n % 3; i < len(sts); i += 3 {
			sts[i].Sample = samples[n%2][i]
		}
		b.Replace(sts)
	}
	close(stop)
	wg.Wait()
}
