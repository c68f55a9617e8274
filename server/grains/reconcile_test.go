package grains

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

func localEvent(id string, wall int64) *pb.Event {
	return &pb.Event{EventId: "local/n1/" + id, Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND, AtUnixMs: wall,
		LocalCommand: &pb.LocalCommand{CommandId: id, IdempotencyKey: "k-" + id, Actor: "local:admin", LocalOrigin: true,
			MinerIds: []string{"m1"}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING},
			Hlc:     &pb.HLC{WallMs: wall, NodeId: "n1"},
			Results: []*pb.MinerResult{{MinerId: "m1", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}}}
}

// Backfilled local commands land in the node's audit once each, whatever is re-sent; malformed ones are
// counted and dropped without failing the batch; every command issued afterwards carries the watermark.
func TestLocalCommandsBackfilledOnceAndWatermarkStamped(t *testing.T) {
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, st, clock.NewFake(t0))
	ctx := context.Background()

	// Issued before any local command: no watermark.
	c0, err := f.IssueCommand(ctx, CommandRequest{MinerIDs: []string{"m1"}, Action: pb.Action_ACTION_START_MINING})
	if err != nil {
		t.Fatal(err)
	}
	malformed := []*pb.Event{
		{Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND},
		{Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND, LocalCommand: &pb.LocalCommand{CommandId: "no-hlc"}},
		{Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND, LocalCommand: &pb.LocalCommand{Hlc: &pb.HLC{WallMs: 9e15}}},
		{Kind: pb.EventKind_EVENT_KIND_LOCAL_COMMAND, LocalCommand: &pb.LocalCommand{CommandId: "bad\x00id", Hlc: &pb.HLC{WallMs: 9e15}}},
	}
	res, err := f.IngestEvents(ctx, "n1", &pb.EventBatch{NodeId: "n1", BatchSeq: 1, Events: append([]*pb.Event{localEvent("l1", 1000)}, malformed...)})
	if err != nil || res.Applied != 1 || res.Rejected != 4 {
		t.Fatalf("first batch: %+v %v", res, err)
	}
	// The same command again in a later batch (a node that restarted before marking it reported), and a new one.
	if _, err := f.IngestEvents(ctx, "n1", &pb.EventBatch{NodeId: "n1", BatchSeq: 2, Events: []*pb.Event{localEvent("l1", 1000), localEvent("l2", 2000)}}); err != nil {
		t.Fatal(err)
	}
	// The first batch re-sent whole (lost ack): a duplicate batch.
	if r, err := f.IngestEvents(ctx, "n1", &pb.EventBatch{NodeId: "n1", BatchSeq: 1, Events: []*pb.Event{localEvent("l1", 1000)}}); err != nil || !r.Duplicate {
		t.Fatalf("re-sent batch: %+v %v", r, err)
	}
	recs, err := f.NodeAudit("n1", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		if !r.GetLocalOrigin() || r.GetActor() != "local:admin" || r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
			t.Fatalf("audit record %v", r)
		}
		ids = append(ids, r.GetCommandId())
	}
	if len(ids) != 2 || ids[0] != "l1" || ids[1] != "l2" {
		t.Fatalf("audit %v, want l1 and l2 once each", ids)
	}

	c1, err := f.IssueCommand(ctx, CommandRequest{MinerIDs: []string{"m1"}, Action: pb.Action_ACTION_START_MINING})
	if err != nil {
		t.Fatal(err)
	}
	var queue []*pb.ControlCommand
	for deadline := time.Now().Add(5 * time.Second); len(queue) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, queue, err = st.NodeQueue("n1"); err != nil {
			t.Fatal(err)
		}
	}
	if len(queue) != 2 {
		t.Fatalf("queue %d", len(queue))
	}
	for _, q := range queue {
		switch q.GetCommandId() {
		case c0.CommandID:
			if q.GetLocalWatermark() != nil {
				t.Fatalf("command issued before any local command carries watermark %v", q.GetLocalWatermark())
			}
		case c1.CommandID:
			if !proto.Equal(q.GetLocalWatermark(), &pb.HLC{WallMs: 2000, NodeId: "n1"}) {
				t.Fatalf("watermark %v, want l2's HLC", q.GetLocalWatermark())
			}
		}
	}
}

// A report with held miners records one conflict each (once, however often the report comes); resolving
// applies or discards once.
func TestConflictsRecordedAndResolved(t *testing.T) {
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}, {MinerId: "m2", NodeId: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, st, clock.NewFake(t0))
	ctx := context.Background()
	issued, err := f.IssueCommand(ctx, CommandRequest{MinerIDs: []string{"m1", "m2"}, Action: pb.Action_ACTION_START_MINING, Actor: "user:ops"})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := f.NodePID(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	report := &pb.CommandResultReport{CommandId: issued.CommandID, MonotonicSeq: 1, Done: true, Results: []*pb.MinerResult{
		{MinerId: "m1", Code: pb.ResultCode_RESULT_CODE_CONFLICT, Message: "held: local action while offline"},
		{MinerId: "m2", Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}}}
	for range 2 {
		f.System().Root.Send(pid, &SessionFrame{Frame: &pb.NodeToCloud{Msg: &pb.NodeToCloud_Result{Result: report}}})
	}
	var open []*pb.Conflict
	deadline := time.Now().Add(5 * time.Second)
	for len(open) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		open, _ = f.Conflicts(store.ConflictOpen)
	}
	time.Sleep(50 * time.Millisecond)
	open, _ = f.Conflicts(store.ConflictOpen)
	if len(open) != 1 {
		t.Fatalf("open conflicts %v, want one (m1)", open)
	}
	c := open[0]
	if c.GetMinerId() != "m1" || c.GetCommandId() != issued.CommandID || c.GetSpec().GetAction() != pb.Action_ACTION_START_MINING ||
		c.GetCommandActor() != "user:ops" || c.GetField() != "mining" || c.GetConflictId() != ConflictID("n1", issued.CommandID, "m1") {
		t.Fatalf("conflict %v", c)
	}
	if _, err := f.ResolveConflict(ctx, c.GetConflictId(), "later", "user:ops"); !errors.Is(err, ErrInvalidResolution) {
		t.Fatalf("bad resolution: %v", err)
	}
	if _, err := f.ResolveConflict(ctx, "cf-none", ResolveApply, "user:ops"); !errors.Is(err, ErrUnknownConflict) {
		t.Fatalf("unknown: %v", err)
	}
	if _, err := f.ResolveConflict(ctx, "bad/id", ResolveApply, "user:ops"); !errors.Is(err, ErrUnknownConflict) {
		t.Fatalf("malformed id: %v", err)
	}
	done, err := f.ResolveConflict(ctx, c.GetConflictId(), ResolveApply, "user:ops")
	if err != nil || done.GetStatus() != store.ConflictApplied || done.GetReissuedCommandId() == "" || done.GetResolvedBy() != "user:ops" {
		t.Fatalf("apply: %v %v", done, err)
	}
	rec, err := f.Command(ctx, done.GetReissuedCommandId())
	if err != nil || len(rec.GetMinerIds()) != 1 || rec.GetMinerIds()[0] != "m1" || rec.GetSpec().GetAction() != pb.Action_ACTION_START_MINING {
		t.Fatalf("re-issued %v %v", rec, err)
	}
	if _, err := f.ResolveConflict(ctx, c.GetConflictId(), ResolveDiscard, "user:ops"); !errors.Is(err, ErrConflictResolved) {
		t.Fatalf("resolve twice: %v", err)
	}
}
