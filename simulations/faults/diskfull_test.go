package faults

import (
	"errors"
	"syscall"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/store"
	"github.com/hashfleet/hashfleet/node/telemetry"
)

func batch(seq uint64) telemetry.Batch {
	return telemetry.Batch{Kind: telemetry.KindTelemetry, Seq: seq, Telemetry: &pb.TelemetryBatch{BatchSeq: seq, Samples: []*pb.Telemetry{{MinerId: "m1"}}}}
}

func TestDiskFullOutbox(t *testing.T) {
	disk := NewDisk()
	o := DiskFullOutbox{Outbox: telemetry.NewMemoryOutbox(100, 100), Disk: disk}
	if _, err := o.Append(batch(1)); err != nil {
		t.Fatal(err)
	}
	disk.Fill()
	_, err := o.Append(batch(2))
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrInjected) {
		t.Fatalf("Append on a full disk: %v", err)
	}
	if _, err := o.Ack(telemetry.KindTelemetry, 1); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Ack on a full disk: %v", err)
	}
	if b, ok, err := o.Next(telemetry.KindTelemetry, 0); err != nil || !ok || b.Seq != 1 {
		t.Fatalf("Next on a full disk: %v %v %v (reads must work)", b.Seq, ok, err)
	}
	if n, _ := o.Len(telemetry.KindTelemetry); n != 1 {
		t.Fatalf("the failed append left %d batches", n)
	}
	disk.Free()
	if _, err := o.Append(batch(2)); err != nil {
		t.Fatal(err)
	}
	if disk.Failures() != 2 || disk.Writes() != 2 {
		t.Errorf("failures %d writes %d", disk.Failures(), disk.Writes())
	}
}

func TestDiskFillAfter(t *testing.T) {
	disk := NewDisk()
	disk.FillAfter(2)
	for i := range 2 {
		if err := disk.Write(); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := disk.Write(); !errors.Is(err, ErrDiskFull) || !disk.Full() {
		t.Fatalf("third write: %v", err)
	}
	disk.FillAfter(0)
	if !disk.Full() {
		t.Fatal("FillAfter(0) left room")
	}
}

// TestDiskFullStore: on the real node store, a full disk keeps the seq mark where it was.
func TestDiskFullStore(t *testing.T) {
	st, err := store.Open(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	disk := NewDisk()
	s := DiskFullStore{NodeStore: st, Disk: disk}
	if err := s.CommitCommand(&pb.AuditRecord{MonotonicSeq: 1, CommandId: "c1"}); err != nil {
		t.Fatal(err)
	}
	disk.Fill()
	for name, write := range map[string]func() error{
		"CommitCommand":    func() error { return s.CommitCommand(&pb.AuditRecord{MonotonicSeq: 2, CommandId: "c2"}) },
		"AppendAudit":      func() error { return s.AppendAudit(&pb.AuditRecord{CommandId: "r"}) },
		"PutResult":        func() error { return s.PutResult(&pb.CommandResultReport{MonotonicSeq: 1}) },
		"SetOwnership":     func() error { return s.SetOwnership(nil) },
		"ReserveBatchSeqs": func() error { _, err := s.ReserveBatchSeqs("telemetry", 10); return err },
		"CommitKeyCommand": func() error { return s.CommitKeyCommand(&pb.AuditRecord{MonotonicSeq: 2}, "o", nil) },
		"SaveKeyring":      func() error { return s.SaveKeyring("o", nil) },
	} {
		if err := write(); !errors.Is(err, ErrDiskFull) {
			t.Errorf("%s on a full disk: %v", name, err)
		}
	}
	if mark, err := s.SeqMark(); err != nil || mark != 1 {
		t.Fatalf("mark %d %v, want 1", mark, err)
	}
	disk.Free()
	if err := s.CommitCommand(&pb.AuditRecord{MonotonicSeq: 2, CommandId: "c2"}); err != nil {
		t.Fatal(err)
	}
}
