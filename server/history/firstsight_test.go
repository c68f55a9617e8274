package history

import (
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// indexExpiry is the Badger expiry (unix s) of id's index key; 0 when the key is missing.
func indexExpiry(t *testing.T, db *badger.DB, id string) uint64 {
	t.Helper()
	var exp uint64
	err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(pIndex + id))
		if err != nil {
			return err
		}
		exp = item.ExpiresAt()
		return nil
	})
	if err != nil {
		t.Fatalf("index key of %s: %v", id, err)
	}
	return exp
}

// A miner's first sample restores its state only if it is indexed; the index key of a reporting miner is
// rewritten after each restart and outlives the hours written before its next refresh, so a miner with
// records on disk is never taken for a new one.
func TestFirstSightUsesIndex(t *testing.T) {
	x := newHarness(t)
	x.appendAt(t0.Add(10*time.Second), tel("a", t0.Add(10*time.Second), 100, 3000, mining))
	first := indexExpiry(t, x.h.DB(), "a")
	wall := uint64(time.Now().Unix())
	if min := wall + uint64((x.cfg.HourRetention + 24*time.Hour - time.Minute).Seconds()); first < min {
		t.Fatalf("index expires at %d, want at least %d (hour retention + refresh period)", first, min)
	}

	// A new miner starts empty; a known one is restored (its resent sample is a duplicate) after a restart.
	x.reopen()
	r := x.appendAt(t0.Add(20*time.Second), tel("a", t0.Add(10*time.Second), 100, 3000, mining),
		tel("b", t0.Add(10*time.Second), 50, 1000, mining))
	if r != (AppendResult{Written: 1, Duplicate: 1}) {
		t.Fatalf("after restart: %+v", r)
	}
	if _, ok := x.h.known["b"]; !ok {
		t.Fatal("b's index key written but b not known")
	}

	// The restart's first sample rewrote a's index key (a later wall clock, the same business time).
	time.Sleep(1100 * time.Millisecond)
	x.reopen()
	x.appendAt(t0.Add(30*time.Second), tel("a", t0.Add(30*time.Second), 100, 3000, mining))
	if again := indexExpiry(t, x.h.DB(), "a"); again <= first {
		t.Fatalf("index key not rewritten after a restart: expiry %d, before %d", again, first)
	}

	// A forgotten miner (idle past the raw retention) is still known and restored when it comes back.
	late := t0.Add(x.cfg.HourCloseGrace + 2*time.Hour)
	if err := x.h.Tick(late); err != nil {
		t.Fatal(err)
	}
	if _, ok := x.h.miners["a"]; ok {
		t.Fatalf("idle miner not forgotten: %+v", x.h.miners["a"].r)
	}
	r = x.appendAt(late, tel("a", t0.Add(30*time.Second), 100, 3000, mining), tel("a", late, 90, 3000, mining))
	if r != (AppendResult{Written: 1, Duplicate: 1}) {
		t.Fatalf("comeback: %+v", r)
	}
}
