package lease

import (
	"errors"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
)

func openBadger(t *testing.T, dir string) *Badger {
	t.Helper()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := NewBadger(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeContract is what every Store must do; the Memory twin and Badger run it alike.
func storeContract(t *testing.T, st Store) {
	if _, err := st.Load("p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load of an absent pair: %v", err)
	}
	s := NewState("p", [2]string{"a", "b"})
	s.Holder, s.Epoch, s.ExpiresAt, s.Version = "a", 1, time.Unix(0, 1_700_000_000_123_456_789), 1
	s.LastHeartbeat["a"] = time.Now()
	if err := st.CompareAndSet("p", 0, s); err != nil {
		t.Fatal(err)
	}
	if err := st.CompareAndSet("p", 0, s); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	got, err := st.Load("p")
	if err != nil {
		t.Fatal(err)
	}
	if !got.DurableEqual(s) || len(got.LastHeartbeat) != 0 {
		t.Fatalf("loaded %+v, stored %+v (heartbeats are not persisted)", got, s)
	}
	next := s.Clone()
	next.ExpiresAt, next.Version = next.ExpiresAt.Add(time.Second), 2
	if err := st.CompareAndSet("p", 1, next); err != nil {
		t.Fatal(err)
	}
	stale := s.Clone()
	stale.Holder, stale.Epoch, stale.Version = "b", 2, 2
	if err := st.CompareAndSet("p", 1, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("CAS from a stale version: %v, want ErrConflict", err)
	}
	if err := st.CompareAndSet("p", 2, stale); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("CAS whose next version is not expect+1: %v", err)
	}
	if err := st.CompareAndSet("q", 0, next); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("CAS of another pair's state: %v", err)
	}
	got, _ = st.Load("p")
	if got.Holder != "a" || got.Version != 2 || !got.ExpiresAt.Equal(next.ExpiresAt) {
		t.Fatalf("after conflicts: %+v", got)
	}
}

func TestMemoryStore(t *testing.T) { storeContract(t, NewMemory()) }

func TestBadgerStore(t *testing.T) { storeContract(t, openBadger(t, t.TempDir())) }

func TestBadgerStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := NewBadger(db)
	s := NewState("p", [2]string{"a", "b"})
	s.Holder, s.Epoch, s.ExpiresAt, s.Version = "b", 9, time.Unix(1_700_000_000, 5), 1
	if err := st.CompareAndSet("p", 0, s); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := openBadger(t, dir).Load("p")
	if err != nil || !got.DurableEqual(s) {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
}

func TestBadgerStoreNeedsSyncWrites(t *testing.T) {
	db, err := badgerkv.Open(badgerkv.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := NewBadger(db); !errors.Is(err, ErrSyncWrites) {
		t.Fatalf("unsynced database accepted: %v", err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	if _, err := Decode([]byte{0x0a, 0xff}); err == nil {
		t.Fatal("truncated record decoded")
	}
	// Unknown fields are skipped, as protobuf does.
	b := append(Encode(State{PairID: "p", Epoch: 2}), 0x78, 0x01) // field 15 varint
	s, err := Decode(b)
	if err != nil || s.PairID != "p" || s.Epoch != 2 {
		t.Fatalf("decode with an unknown field: %+v %v", s, err)
	}
}

func TestBadgerCorruptValueIsAnError(t *testing.T) {
	st := openBadger(t, t.TempDir())
	if err := st.db.Update(func(txn *badger.Txn) error { return txn.Set(key("p"), []byte{0x0a, 0xff}) }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load("p"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("corrupt record: %v", err)
	}
}
