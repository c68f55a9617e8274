package badgerkv

import (
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestProtoRoundTripOnDisk(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error {
		return SetProto(txn, []byte("seq"), &pb.SeqMark{Seq: 42})
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var got pb.SeqMark
	if err := ro.View(func(txn *badger.Txn) error { return GetProto(txn, []byte("seq"), &got) }); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 42 {
		t.Fatalf("seq = %d after reopen, want 42", got.Seq)
	}
	err = ro.View(func(txn *badger.Txn) error { return GetProto(txn, []byte("missing"), &got) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v, want ErrNotFound", err)
	}
}

func TestGetProtoReportsUndecodableValue(t *testing.T) {
	db, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte{0xff, 0xff, 0xff}) })
	var m pb.SeqMark
	err = db.View(func(txn *badger.Txn) error { return GetProto(txn, []byte("k"), &m) })
	if err == nil {
		t.Fatal("garbage decoded without error")
	}
}
