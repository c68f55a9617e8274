package store

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashfleet/hashfleet/actors/badgerkv"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// A 20,000-device ownership list (≈1.5 MB, ten times the 1 MiB memtable's largest batch) is saved and read back,
// before and after a reopen.
func TestLargeOwnershipWithTheSmallMemtable(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	devs := make([]*pb.Device, 20_000)
	for i := range devs {
		devs[i] = &pb.Device{MinerId: fmt.Sprintf("miner-%05d", i), Address: fmt.Sprintf("10.%d.%d.%d:4028", i>>16, i>>8&255, i&255),
			Serial: fmt.Sprintf("SN-ANTMINER-S19-%08d", i), Mac: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, i>>8&255, i&255),
			Protocol: pb.Protocol_PROTOCOL_ANTMINER}
	}
	for round := range 3 { // several large values in one memtable's life
		if err := s.SetOwnership(devs[:len(devs)-round]); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *Badger) {
		got, err := s.Ownership()
		if err != nil || len(got) != len(devs)-2 || got[12345].GetSerial() != devs[12345].GetSerial() {
			t.Fatalf("ownership: %d devices, %v", len(got), err)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A crash image of a store written with the former 8 MiB memtable, whose memtable log holds more than a 1 MiB
// memtable's arena, opens (the log is replayed with the size that wrote it) and keeps every write.
func TestCrashImageOfALargerMemtableOpens(t *testing.T) {
	dir := t.TempDir()
	db, err := badgerkv.Open(badgerkv.Options{Dir: dir, MemTableSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12_000 // × ≈250 B ≈ 3 MB of memtable entries: no flush at 8 MiB, too many for a 1 MiB arena
	val := make([]byte, 200)
	for i := 0; i < n; i += 500 {
		if err := db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+500; j++ {
				if err := txn.Set(fmt.Appendf(nil, "test/%06d", j), val); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	img := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	logs := 0
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if filepath.Ext(e.Name()) == ".mem" {
			logs++
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if logs == 0 {
		t.Fatal("the crash image has no memtable log")
	}
	s := open(t, img)
	defer s.Close()
	got := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("test/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			got++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%d of %d entries after the crash image reopened", got, n)
	}
}
