package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func open(t *testing.T, dir string) *Badger {
	t.Helper()
	s, err := Open(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rec(seq uint64, at int64, code pb.ResultCode) *pb.AuditRecord {
	return &pb.AuditRecord{CommandId: fmt.Sprintf("c%d", seq), MonotonicSeq: seq, AtUnixMs: at, Code: code, Signature: []byte{byte(seq)}}
}

func TestSeqMarkSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if m, err := s.SeqMark(); err != nil || m != 0 {
		t.Fatalf("fresh mark %d, %v", m, err)
	}
	for _, seq := range []uint64{1, 2, 5} {
		if err := s.CommitCommand(rec(seq, int64(seq)*1000, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutResult(&pb.CommandResultReport{CommandId: "c5", MonotonicSeq: 5, Done: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOwnership([]*pb.Device{{MinerId: "m-1"}, {MinerId: "m-2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReserveBatchSeqs("telemetry", 1000); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.SeqMark(); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after close: %v", err)
	}

	s = open(t, dir)
	defer s.Close()
	if m, err := s.SeqMark(); err != nil || m != 5 {
		t.Fatalf("mark after reopen %d, %v; want 5", m, err)
	}
	if c, err := s.Command(5); err != nil || c.GetCommandId() != "c5" {
		t.Fatalf("command 5 after reopen: %v, %v", c, err)
	}
	if r, err := s.Result(5); err != nil || !r.GetDone() {
		t.Fatalf("result 5 after reopen: %v, %v", r, err)
	}
	if _, err := s.Result(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("result 2: %v, want ErrNotFound", err)
	}
	if d, err := s.Ownership(); err != nil || len(d) != 2 {
		t.Fatalf("ownership after reopen: %v, %v", d, err)
	}
	if first, err := s.ReserveBatchSeqs("telemetry", 1000); err != nil || first != 1001 {
		t.Fatalf("batch seqs after reopen start at %d, %v; want 1001 (never reused)", first, err)
	}
	if first, err := s.ReserveBatchSeqs("events", 10); err != nil || first != 1 {
		t.Fatalf("events seqs are their own: %d, %v", first, err)
	}
}

func TestCommitCommandRefusesSeqNotAbove(t *testing.T) {
	s := open(t, "")
	defer s.Close()
	if err := s.CommitCommand(rec(3, 1, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{3, 2} {
		if err := s.CommitCommand(rec(seq, 2, pb.ResultCode_RESULT_CODE_RUNNING)); !errors.Is(err, ErrSeqNotAbove) {
			t.Fatalf("seq %d after 3: %v, want ErrSeqNotAbove", seq, err)
		}
	}
	if m, _ := s.SeqMark(); m != 3 {
		t.Fatalf("mark moved to %d", m)
	}
	if c, _ := s.Command(3); c.GetAtUnixMs() != 1 {
		t.Fatal("a refused commit overwrote the recorded command")
	}
}

func TestAuditLogIsOrdered(t *testing.T) {
	s := open(t, "")
	defer s.Close()
	// Same millisecond, same seq (a replay refused twice): both kept, in insertion order.
	recs := []*pb.AuditRecord{
		rec(1, 1000, pb.ResultCode_RESULT_CODE_RUNNING),
		rec(1, 2000, pb.ResultCode_RESULT_CODE_REFUSED_SEQ),
		rec(1, 2000, pb.ResultCode_RESULT_CODE_DUPLICATE),
		rec(2, 3000, pb.ResultCode_RESULT_CODE_REFUSED_NODE),
	}
	if err := s.CommitCommand(recs[0]); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		if err := s.AppendAudit(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit(0, 0)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("audit %d records, %v", len(got), err)
	}
	for i := range recs {
		if got[i].GetCode() != recs[i].GetCode() || got[i].GetAtUnixMs() != recs[i].GetAtUnixMs() {
			t.Fatalf("record %d is %v, want %v", i, got[i], recs[i])
		}
	}
	page, _ := s.Audit(1, 2)
	if len(page) != 2 || page[0].GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_SEQ {
		t.Fatalf("page %v", page)
	}
}

func TestAuditInsertionOrderSurvivesReopenAtTheSameMillisecond(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := range 3 {
		if err := s.AppendAudit(rec(uint64(10-i), 5000, pb.ResultCode_RESULT_CODE_REFUSED_SEQ)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if err := s.AppendAudit(rec(1, 5000, pb.ResultCode_RESULT_CODE_REFUSED_NODE)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit(0, 0)
	if err != nil || len(got) != 4 {
		t.Fatalf("%d records, %v: a record was overwritten", len(got), err)
	}
	for i, want := range []uint64{10, 9, 8, 1} {
		if got[i].GetMonotonicSeq() != want {
			t.Fatalf("record %d has seq %d, want %d (insertion order)", i, got[i].GetMonotonicSeq(), want)
		}
	}
}
