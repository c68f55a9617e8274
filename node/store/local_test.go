package store

import (
	"errors"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
)

func entry(id, key string, wall int64, logical uint32) *pb.LocalLogEntry {
	return &pb.LocalLogEntry{Command: &pb.LocalCommand{CommandId: id, IdempotencyKey: key, LocalOrigin: true,
		Hlc: &pb.HLC{WallMs: wall, Logical: logical, NodeId: "n1"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}}}
}

func TestLocalCommandLog(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*pb.LocalLogEntry{entry("a", "ka", 100, 0), entry("b", "kb", 100, 1), entry("c", "kc", 99, 5)} {
		if _, err := s.CreateLocal(e); err != nil {
			t.Fatal(err)
		}
	}
	// The same idempotency key: nothing written, the first entry returned.
	got, err := s.CreateLocal(entry("d", "ka", 200, 0))
	if !errors.Is(err, ErrLocalExists) || got.GetCommand().GetCommandId() != "a" {
		t.Fatalf("reused key: %v %v", got, err)
	}
	for name, e := range map[string]*pb.LocalLogEntry{
		"taken command id": entry("a", "k-new", 300, 0),
		"taken HLC":        entry("e", "k-e", 100, 1),
	} {
		if _, err := s.CreateLocal(e); !errors.Is(err, ErrLocalExists) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, e := range map[string]*pb.LocalLogEntry{
		"no id":  entry("", "k1", 1, 0),
		"no key": entry("x", "", 1, 0),
		"no hlc": {Command: &pb.LocalCommand{CommandId: "y", IdempotencyKey: "k2"}},
	} {
		if _, err := s.CreateLocal(e); err == nil || errors.Is(err, ErrLocalExists) {
			t.Errorf("%s: %v", name, err)
		}
	}
	b := entry("b", "kb", 100, 1)
	b.Done, b.Command.Results = true, []*pb.MinerResult{{MinerId: "m1", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}
	if err := s.UpdateLocal(b); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateLocal(entry("nope", "k", 1, 0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var order []string
	_ = s.LocalCommands(true, func(e *pb.LocalLogEntry) bool { order = append(order, e.GetCommand().GetCommandId()); return true })
	if len(order) != 3 || order[0] != "b" || order[1] != "a" || order[2] != "c" {
		t.Fatalf("newest first: %v, want b a c (HLC order, not insertion)", order)
	}
	if e, err := s.LocalCommand("b"); err != nil || !e.GetDone() || len(e.GetCommand().GetResults()) != 1 {
		t.Fatalf("b after reopen: %v %v", e, err)
	}
	if _, err := s.LocalCommand("zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	var first string
	_ = s.LocalCommands(false, func(e *pb.LocalLogEntry) bool { first = e.GetCommand().GetCommandId(); return false })
	if first != "c" {
		t.Fatalf("oldest first starts with %s", first)
	}
}

func TestDeleteLocal(t *testing.T) {
	s, err := Open(Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, b := entry("a", "ka", 100, 0), entry("b", "kb", 101, 0)
	for _, e := range []*pb.LocalLogEntry{a, b} {
		if _, err := s.CreateLocal(e); err != nil {
			t.Fatal(err)
		}
	}
	a.Done, a.Reported = true, true
	if err := s.UpdateLocal(a); err != nil {
		t.Fatal(err)
	}
	// b is not finished: the call is refused as a whole, a stays.
	if n, err := s.DeleteLocal("a", "b"); !errors.Is(err, ErrLocalNotFinished) || n != 0 {
		t.Fatalf("delete with an unfinished entry: %d %v", n, err)
	}
	if _, err := s.LocalCommand("a"); err != nil {
		t.Fatalf("a refused delete lost a: %v", err)
	}
	if n, err := s.DeleteLocal("a", "unknown"); err != nil || n != 1 {
		t.Fatalf("delete a: %d %v", n, err)
	}
	if _, err := s.LocalCommand("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a after delete: %v", err)
	}
	// Its idempotency key and HLC are free again.
	if _, err := s.CreateLocal(entry("a2", "ka", 100, 0)); err != nil {
		t.Fatalf("reuse a's key and HLC: %v", err)
	}
}
