package store

import (
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/badgerkv/inspect"
	"github.com/hashfleet/hashfleet/messages/pb"
)

func TestBackupStateRoundTripNeverMovesBackwards(t *testing.T) {
	src := open(t, t.TempDir())
	defer src.Close()
	for _, seq := range []uint64{1, 4, 9} {
		if err := src.CommitCommand(rec(seq, int64(seq)*1000, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
			t.Fatal(err)
		}
	}
	keys := []*pb.CommandKey{{KeyId: "org/k1", PublicKey: make([]byte, 32)}, {KeyId: "org/k0", Revoked: true}}
	if err := src.SaveKeyring("org", keys); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReserveBatchSeqs("telemetry", 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReserveBatchSeqs("telemetry", 1000); err != nil {
		t.Fatal(err)
	}
	if err := src.SetOwnership([]*pb.Device{{MinerId: "m-1"}}); err != nil {
		t.Fatal(err)
	}
	st, err := src.BackupState()
	if err != nil {
		t.Fatal(err)
	}
	if st.SeqMark != 9 || !st.SeqMarkUpdatedAt.Equal(time.UnixMilli(9000)) || !st.HasKeyring || st.OrgID != "org" || len(st.CommandKeys) != 2 ||
		st.BatchSeqs["telemetry"] != 2000 || !st.HasOwnership || len(st.Ownership) != 1 {
		t.Fatalf("backup state %+v", st)
	}

	// Into an empty store: the mark, keyring and ownership as they were, batch seqs far ahead.
	dst := open(t, t.TempDir())
	defer dst.Close()
	if err := dst.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	if m, _ := dst.SeqMark(); m != 9 {
		t.Fatalf("restored mark %d", m)
	}
	if err := dst.CommitCommand(rec(9, 1, pb.ResultCode_RESULT_CODE_RUNNING)); !errors.Is(err, ErrSeqNotAbove) {
		t.Fatalf("seq 9 after restoring mark 9: %v", err)
	}
	if org, ks, err := dst.Keyring(); err != nil || org != "org" || len(ks) != 2 || !ks[1].GetRevoked() {
		t.Fatalf("restored keyring %s %v %v", org, ks, err)
	}
	if first, err := dst.ReserveBatchSeqs("telemetry", 10); err != nil || first != 2000+RestoreBatchSeqSkip+1 {
		t.Fatalf("first batch seq after restore %d, %v", first, err)
	}
	if own, err := dst.Ownership(); err != nil || len(own) != 1 {
		t.Fatalf("restored ownership %v %v", own, err)
	}

	// Over a store that is further on (--force over the node's own directory): nothing moves backwards.
	ahead := open(t, t.TempDir())
	defer ahead.Close()
	if err := ahead.CommitCommand(rec(20, 1, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
		t.Fatal(err)
	}
	if _, err := ahead.ReserveBatchSeqs("telemetry", RestoreBatchSeqSkip+5000); err != nil {
		t.Fatal(err)
	}
	if err := ahead.SetOwnership([]*pb.Device{{MinerId: "m-2"}, {MinerId: "m-3"}}); err != nil {
		t.Fatal(err)
	}
	if err := ahead.RestoreState(st); err != nil {
		t.Fatal(err)
	}
	if m, _ := ahead.SeqMark(); m != 20 {
		t.Fatalf("mark moved back to %d", m)
	}
	if first, _ := ahead.ReserveBatchSeqs("telemetry", 1); first != RestoreBatchSeqSkip+5000+1 {
		t.Fatalf("batch seqs moved back: next %d", first)
	}
	if own, _ := ahead.Ownership(); len(own) != 2 {
		t.Fatalf("ownership replaced: %v", own)
	}
}

func TestInspectLiveStore(t *testing.T) {
	s := open(t, t.TempDir())
	for _, seq := range []uint64{1, 2} {
		if err := s.CommitCommand(rec(seq, int64(seq)*1000, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Inspect(nil, func(in *inspect.Inspector) error {
		// A write during the view is not seen by it: one snapshot.
		if err := s.CommitCommand(rec(3, 3000, pb.ResultCode_RESULT_CODE_RUNNING)); err != nil {
			return err
		}
		sum, err := in.Summary()
		if err != nil {
			return err
		}
		if in.Kind() != "node" || *sum.SeqHighWaterMark != 2 {
			t.Errorf("live summary: kind %s mark %d", in.Kind(), *sum.SeqHighWaterMark)
		}
		rs, err := in.Audit(10)
		if err != nil || len(rs) != 2 {
			t.Errorf("live audit: %d records, %v", len(rs), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Inspect(nil, func(*inspect.Inspector) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("inspect after close: %v", err)
	}
}
