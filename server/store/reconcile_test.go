package store

import (
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func lc(id string, wall int64, logical uint32) *pb.LocalCommand {
	return &pb.LocalCommand{CommandId: id, Actor: "local:admin", MinerIds: []string{"m1"}, LocalOrigin: true,
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}, Hlc: &pb.HLC{WallMs: wall, Logical: logical, NodeId: "n1"}}
}

func audit(c *pb.LocalCommand) *pb.AuditRecord {
	return &pb.AuditRecord{CommandId: c.GetCommandId(), Actor: c.GetActor(), AtUnixMs: c.GetHlc().GetWallMs(), LocalOrigin: true}
}

func TestLocalCommandsKeptOnceAndWatermarkOnlyRises(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if wm, err := s.LocalWatermark("n1"); err != nil || wm != nil {
		t.Fatalf("fresh watermark %v %v", wm, err)
	}
	fresh, wm, err := s.ApplyLocalCommands("n1", []*pb.LocalCommand{lc("a", 100, 0), lc("b", 100, 1)}, audit)
	if err != nil || fresh != 2 || wm.GetWallMs() != 100 || wm.GetLogical() != 1 {
		t.Fatalf("first: %d %v %v", fresh, wm, err)
	}
	// A replayed batch (same ids) and an older command arriving late: nothing twice, the watermark stays.
	fresh, wm, err = s.ApplyLocalCommands("n1", []*pb.LocalCommand{lc("a", 100, 0), lc("c", 50, 0)}, audit)
	if err != nil || fresh != 1 || wm.GetWallMs() != 100 || wm.GetLogical() != 1 {
		t.Fatalf("replay: %d %v %v", fresh, wm, err)
	}
	recs, _ := s.NodeAudit("n1", 100)
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3 (a, b, c once each)", len(recs))
	}
	for _, r := range recs {
		if !r.GetLocalOrigin() || r.GetNodeId() != "n1" {
			t.Fatalf("audit record %v", r)
		}
	}
	if _, _, err := s.ApplyLocalCommands("n/1", nil, audit); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("bad node id: %v", err)
	}
	if _, _, err := s.ApplyLocalCommands("n1", []*pb.LocalCommand{lc("", 1, 0)}, audit); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("empty command id: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if wm, err := s.LocalWatermark("n1"); err != nil || wm.GetWallMs() != 100 || wm.GetLogical() != 1 {
		t.Fatalf("watermark after reopen %v %v", wm, err)
	}
	if cs, err := s.LocalCommandsOf("n1"); err != nil || len(cs) != 3 {
		t.Fatalf("local commands after reopen: %d %v", len(cs), err)
	}
}

func TestConflictsCreateOnceResolveOnce(t *testing.T) {
	s, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := &pb.Conflict{ConflictId: "cf-1", NodeId: "n1", MinerId: "m1", CommandId: "c1", Status: ConflictOpen}
	if ok, err := s.CreateConflict(c); !ok || err != nil {
		t.Fatalf("create: %v %v", ok, err)
	}
	dup := &pb.Conflict{ConflictId: "cf-1", Status: ConflictOpen, Message: "again"}
	if ok, err := s.CreateConflict(dup); ok || err != nil {
		t.Fatalf("create again: %v %v", ok, err)
	}
	if got, _ := s.Conflict("cf-1"); got.GetMessage() != "" || got.GetMinerId() != "m1" {
		t.Fatalf("a re-reported conflict replaced the first record: %v", got)
	}
	out, err := s.ResolveConflict("cf-1", func(c *pb.Conflict) error { c.Status = ConflictDiscarded; return nil })
	if err != nil || out.GetStatus() != ConflictDiscarded {
		t.Fatalf("resolve: %v %v", out, err)
	}
	if _, err := s.ResolveConflict("cf-1", func(c *pb.Conflict) error { c.Status = ConflictApplied; return nil }); !errors.Is(err, ErrExists) {
		t.Fatalf("resolve twice: %v", err)
	}
	if _, err := s.ResolveConflict("nope", func(*pb.Conflict) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve unknown: %v", err)
	}
	if open, _ := s.Conflicts(ConflictOpen); len(open) != 0 {
		t.Fatalf("open %v", open)
	}
	if all, _ := s.Conflicts(""); len(all) != 1 {
		t.Fatalf("all %v", all)
	}
}
