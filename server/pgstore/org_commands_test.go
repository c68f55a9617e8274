package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/pgstore"
	"github.com/hashfleet/hashfleet/server/store"
	"github.com/hashfleet/hashfleet/server/testsvc"
)

func orgCommandRecord(id, key string, miners ...string) *pb.CommandRecord {
	rec := &pb.CommandRecord{CommandId: id, Actor: "test", CreatedAtUnixMs: 1_000, MinerIds: miners, IdempotencyKey: key,
		Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}, Status: pb.ResultCode_RESULT_CODE_PENDING,
		Results: map[string]*pb.MinerResult{}}
	for _, m := range miners {
		rec.Results[m] = &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_PENDING}
	}
	return rec
}

func commandCount(t *testing.T, s *pgstore.Store) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM commands`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOrgCommandsStore: miner owners resolve through the node's org; a command is recorded with every miner
// PENDING and one part per node; one idempotency key per org records one command even when many requests
// race (keys of different orgs do not collide); a miner's final result is written once and never changes;
// the write giving the last final result finishes the record.
func TestOrgCommandsStore(t *testing.T) {
	pg := testsvc.SharedPostgres(t)
	s := open(t, pg.NewDatabase(t))
	for _, n := range []struct{ node, org string }{{"n1", "org-a"}, {"n2", "org-a"}, {"n3", "org-b"}} {
		if err := s.PutNodeRecord(&pb.NodeRecord{NodeId: n.node, OrgId: n.org}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}, {MinerId: "m2", NodeId: "n1"},
		{MinerId: "m3", NodeId: "n2"}, {MinerId: "x1", NodeId: "n3"}, {MinerId: "orphan", NodeId: "gone"}}}); err != nil {
		t.Fatal(err)
	}
	owners, err := s.MinerOwners([]string{"m1", "m3", "x1", "orphan", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(owners) != 4 || owners["m1"].OrgID != "org-a" || owners["m3"].NodeID != "n2" || owners["x1"].OrgID != "org-b" ||
		owners["orphan"].OrgID != "" {
		t.Fatalf("owners %+v", owners)
	}

	nodeOf := map[string]string{"m1": "n1", "m2": "n1", "m3": "n2", "x1": "n3"}
	deadline := time.UnixMilli(61_000)
	// Many requests with one key at once: one command.
	var wg sync.WaitGroup
	ids := make([]string, 8)
	errs := make([]error, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], _, errs[i] = s.CreateOrgCommand("org-a", orgCommandRecord(fmt.Sprintf("c-%d", i), "k1", "m1", "m2", "m3"), nodeOf, deadline)
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("request %d: %q %v, want %q", i, ids[i], errs[i], ids[0])
		}
	}
	if n := commandCount(t, s); n != 1 {
		t.Fatalf("%d commands recorded for one key", n)
	}
	id := ids[0]
	// The same key in another org is another command.
	if other, existed, err := s.CreateOrgCommand("org-b", orgCommandRecord("c-b", "k1", "x1"), nodeOf, deadline); err != nil || existed || other != "c-b" {
		t.Fatalf("org-b key k1: %q %v %v", other, existed, err)
	}
	// A miner without an owning node is refused before anything is written.
	if _, _, err := s.CreateOrgCommand("org-a", orgCommandRecord("c-bad", "", "m1", "nope"), nodeOf, deadline); !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("unowned miner: %v", err)
	}
	if n := commandCount(t, s); n != 2 {
		t.Fatalf("%d commands after a refused one, want 2", n)
	}

	oc, err := s.OrgCommand(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if oc.OrgID != "org-a" || !oc.Active || len(oc.Parts) != 2 || oc.Parts[0].NodeID != "n1" || len(oc.Parts[0].MinerIDs) != 2 ||
		oc.Parts[1].NodeID != "n2" || !oc.Deadline.Equal(deadline) {
		t.Fatalf("org command %+v", oc)
	}
	for _, m := range oc.Record.GetMinerIds() {
		if oc.Record.GetResults()[m].GetCode() != pb.ResultCode_RESULT_CODE_PENDING {
			t.Fatalf("%s not pending: %v", m, oc.Record.GetResults()[m])
		}
	}
	if err := s.SetPartSeq(id, "n1", 7); err != nil {
		t.Fatal(err)
	}
	p, ok, err := s.Part(id, "n1")
	if err != nil || !ok || p.Seq != 7 || len(p.MinerIDs) != 2 {
		t.Fatalf("part %+v %v %v", p, ok, err)
	}
	if _, ok, _ := s.Part(id, "n3"); ok {
		t.Fatal("n3 has no part of the command")
	}
	if _, ok, _ := s.Part("not-an-org-command", "n1"); ok {
		t.Fatal("part of an unknown command")
	}

	put := func(miner string, code pb.ResultCode, final bool) (bool, bool) {
		t.Helper()
		applied, finished, err := s.PutMinerResult(id, &pb.MinerResult{MinerId: miner, Code: code, FinishedAtUnixMs: 2_000}, final,
			func(rec *pb.CommandRecord) bool {
				rec.Status, rec.FinishedAtUnixMs = pb.ResultCode_RESULT_CODE_FAILED, 3_000
				return true
			})
		if err != nil {
			t.Fatal(err)
		}
		return applied, finished
	}
	if a, f := put("m1", pb.ResultCode_RESULT_CODE_RUNNING, false); !a || f {
		t.Fatalf("running: applied %v finished %v", a, f)
	}
	if a, f := put("m1", pb.ResultCode_RESULT_CODE_SUCCEEDED, true); !a || f {
		t.Fatalf("m1 final: applied %v finished %v", a, f)
	}
	if a, _ := put("m1", pb.ResultCode_RESULT_CODE_FAILED, true); a {
		t.Fatal("a final result was overwritten")
	}
	if a, _ := put("m1", pb.ResultCode_RESULT_CODE_RUNNING, false); a {
		t.Fatal("a final result regressed to running")
	}
	open, err := s.OpenMiners(id)
	if err != nil || len(open) != 2 {
		t.Fatalf("open miners %v %v", open, err)
	}
	mc, err := s.MinerCommands("m2", "", true)
	if err != nil || len(mc) != 1 || mc[0].CommandID != id || mc[0].NodeID != "n1" || !mc[0].Deadline.Equal(deadline) {
		t.Fatalf("miner commands %+v %v", mc, err)
	}
	// The last two finals race: exactly one of them finishes the command.
	var fin [2]bool
	for i, m := range []string{"m2", "m3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fin[i], _ = s.PutMinerResult(id, &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_TIMEOUT}, true,
				func(rec *pb.CommandRecord) bool { rec.FinishedAtUnixMs = 3_000; return true })
		}()
	}
	wg.Wait()
	if fin[0] == fin[1] {
		t.Fatalf("finished %v: exactly one write must finish the command", fin)
	}
	oc, err = s.OrgCommand(id, func(*pb.CommandRecord) pb.ResultCode { return pb.ResultCode_RESULT_CODE_TIMEOUT })
	if err != nil {
		t.Fatal(err)
	}
	if oc.Active || oc.Record.GetStatus() != pb.ResultCode_RESULT_CODE_TIMEOUT || oc.Record.GetResults()["m1"].GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED ||
		oc.Record.GetResults()["m3"].GetCode() != pb.ResultCode_RESULT_CODE_TIMEOUT || oc.Record.GetNodeSeqs()["n1"] != 7 {
		t.Fatalf("finished command %+v", oc.Record)
	}
	rec, err := s.Command(id)
	if err != nil || rec.GetFinishedAtUnixMs() == 0 {
		t.Fatalf("stored record not finished: %v %v", rec, err)
	}
	if orgs, err := s.OverdueOrgs(deadline.Add(time.Millisecond)); err != nil || len(orgs) != 1 || orgs[0] != "org-b" {
		t.Fatalf("overdue orgs %v %v: org-b's command is open past its deadline, org-a's finished", orgs, err)
	}
	if orgs, err := s.OverdueOrgs(deadline.Add(-time.Millisecond)); err != nil || len(orgs) != 0 {
		t.Fatalf("overdue orgs before the deadline: %v %v", orgs, err)
	}
	if act, err := s.ActiveOrgCommands("org-a"); err != nil || len(act) != 0 {
		t.Fatalf("active %v %v", act, err)
	}
	if _, err := s.OrgCommand("nope", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown command: %v", err)
	}
}
