package grains

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// protoactor's dead-letter throttle sleeps one interval (1s) in a goroutine of its own that Shutdown does
		// not stop; it ends by itself. Its name depends on inlining.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

var t0 = time.Unix(1_700_000_000, 0)

func lookupOf(devs map[string]known) lookupFunc {
	return func(id string) (known, bool) { k, ok := devs[id]; return k, ok }
}

func dev(id, node string) known { return known{device: &pb.Device{MinerId: id, NodeId: node}} }

func TestPlanTelemetry(t *testing.T) {
	known := map[string]known{"a": dev("a", "n1"), "b": dev("b", "n2"), "old": {device: &pb.Device{MinerId: "old", NodeId: "n1"}, observedMs: 5000}}
	s := func(id string, at int64) *pb.Telemetry { return &pb.Telemetry{MinerId: id, ObservedAtUnixMs: at} }
	tests := []struct {
		name    string
		trust   bool
		in      []*pb.Telemetry
		applied []string
		newDevs []string
		counts  map[string]int
	}{
		{"owned applies", false, []*pb.Telemetry{s("a", 1)}, []string{"a"}, nil, map[string]int{resApplied: 1}},
		{"other node's miner refused", true, []*pb.Telemetry{s("b", 1)}, nil, nil, map[string]int{resUnowned: 1}},
		{"unknown refused untrusted", false, []*pb.Telemetry{s("z", 1)}, nil, nil, map[string]int{resUnowned: 1}},
		{"unknown registered trusted", true, []*pb.Telemetry{s("z", 1), s("z", 2)}, []string{"z"}, []string{"z"}, map[string]int{resApplied: 1, resStale: 1}},
		{"older than known refused", false, []*pb.Telemetry{s("old", 4999), s("old", 5000)}, []string{"old"}, nil, map[string]int{resApplied: 1, resStale: 1}},
		{"invalid id", true, []*pb.Telemetry{s("", 1), s("x\x01", 1)}, nil, nil, map[string]int{resInvalid: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planTelemetry("n1", tc.in, lookupOf(known), tc.trust, t0)
			var got, gotNew []string
			for _, x := range p.apply {
				got = append(got, x.GetMinerId())
			}
			for _, d := range p.newDevices {
				gotNew = append(gotNew, d.GetMinerId())
				if d.GetNodeId() != "n1" {
					t.Errorf("new device %v not owned by n1", d)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.applied) || fmt.Sprint(gotNew) != fmt.Sprint(tc.newDevs) {
				t.Errorf("applied %v new %v, want %v %v", got, gotNew, tc.applied, tc.newDevs)
			}
			for k, v := range tc.counts {
				if p.counts[k] != v {
					t.Errorf("count %s = %d, want %d (all %v)", k, p.counts[k], v, p.counts)
				}
			}
		})
	}
	// The newest sample of a miner in a batch wins, whatever the order; a missing time becomes now.
	p := planTelemetry("n1", []*pb.Telemetry{s("a", 9), s("a", 7), {MinerId: "a"}}, lookupOf(known), false, t0)
	if len(p.apply) != 1 || p.apply[0].GetObservedAtUnixMs() != t0.UnixMilli() {
		t.Fatalf("newest of batch: %v", p.apply)
	}
}

func TestPlanEvents(t *testing.T) {
	known := map[string]known{"a": {device: &pb.Device{MinerId: "a", NodeId: "n1", Address: "1.1.1.1:4028"}}, "b": dev("b", "n2")}
	disc := func(id, addr string) *pb.Event {
		return &pb.Event{Kind: pb.EventKind_EVENT_KIND_DISCOVERED, Device: &pb.Device{MinerId: id, Address: addr, NodeId: "spoofed"}}
	}
	state := func(id string) *pb.Event {
		return &pb.Event{Kind: pb.EventKind_EVENT_KIND_STATE_CHANGE, MinerId: id, ToState: pb.MinerState_MINER_STATE_STOPPED}
	}
	p := planEvents("n1", []*pb.Event{disc("a", "1.1.1.1:4028"), disc("a", "2.2.2.2:4028"), disc("b", "x"), disc("c", "3.3.3.3:4028"),
		state("a"), state("b"), state("c"), {Kind: pb.EventKind_EVENT_KIND_UNSPECIFIED},
		{Kind: pb.EventKind_EVENT_KIND_NODE_METRICS, NodeMetrics: &pb.NodeMetrics{AtUnixMs: 9, Goroutines: 90}},
		{Kind: pb.EventKind_EVENT_KIND_NODE_METRICS, NodeMetrics: &pb.NodeMetrics{AtUnixMs: 7, Goroutines: 70}},
		{Kind: pb.EventKind_EVENT_KIND_NODE_METRICS},
		{Kind: pb.EventKind_EVENT_KIND_COMMAND_AUDIT, Audit: &pb.AuditRecord{MonotonicSeq: 4, NodeId: "spoofed", Code: pb.ResultCode_RESULT_CODE_REFUSED_SEQ}},
		{Kind: pb.EventKind_EVENT_KIND_COMMAND_AUDIT}}, lookupOf(known), true, t0)
	if len(p.devices) != 2 || p.devices[0].GetAddress() != "2.2.2.2:4028" || p.devices[1].GetMinerId() != "c" || p.devices[1].GetNodeId() != "n1" {
		t.Fatalf("devices %v", p.devices)
	}
	if !p.isNew["c"] || p.isNew["a"] {
		t.Fatalf("isNew %v", p.isNew)
	}
	if len(p.states) != 2 || p.states[0].miner != "a" || p.states[1].miner != "c" || !p.states[0].at.Equal(t0) {
		t.Fatalf("states %v", p.states)
	}
	if p.counts[resUnowned] != 2 || p.counts[resIgnored] != 1 || p.counts[resInvalid] != 2 {
		t.Fatalf("counts %v", p.counts)
	}
	// The newest process snapshot of the batch wins, whatever the order; one without a snapshot is invalid.
	if p.nodeMetrics.GetGoroutines() != 90 {
		t.Fatalf("node metrics %v", p.nodeMetrics)
	}
	// A node's audit record is kept as the node it came from, whatever node it names.
	if len(p.audit) != 1 || p.audit[0].GetNodeId() != "n1" || p.audit[0].GetMonotonicSeq() != 4 || p.audit[0].GetAtUnixMs() != t0.UnixMilli() {
		t.Fatalf("audit %v", p.audit)
	}
	p = planEvents("n1", []*pb.Event{disc("z", "x")}, lookupOf(known), false, t0)
	if len(p.devices) != 0 || p.counts[resUnpaired] != 1 {
		t.Fatalf("untrusted discovery registered: %v %v", p.devices, p.counts)
	}
	// ... but waits for the operator to pair it, stamped with the reporting node.
	if len(p.pending) != 1 || p.pending[0].GetMinerId() != "z" || p.pending[0].GetNodeId() != "n1" {
		t.Fatalf("pending %v", p.pending)
	}
}

func TestValidateCommand(t *testing.T) {
	ok := CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_REBOOT}
	if err := ValidateCommand(ok, 10); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		req  CommandRequest
		want string
	}{
		{CommandRequest{Action: pb.Action_ACTION_REBOOT}, "empty"},
		{CommandRequest{MinerIDs: []string{"a", "b", "c"}, Action: pb.Action_ACTION_REBOOT}, "exceed"},
		{CommandRequest{MinerIDs: []string{"a", "a"}, Action: pb.Action_ACTION_REBOOT}, "twice"},
		{CommandRequest{MinerIDs: []string{""}, Action: pb.Action_ACTION_REBOOT}, "empty id"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_UNSPECIFIED}, "unknown action"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_UPDATE_POOLS}, "1 to 3 pools"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_UPDATE_POOLS, Pools: []*pb.Pool{{User: "w"}}}, "needs a URL"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_REBOOT, Pools: []*pb.Pool{{Url: "stratum+tcp://p:3333"}}}, "only valid with update_pools"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_SET_POWER_TARGET}, "power_target_w"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_STOP_MINING, PowerTargetW: 1}, "only valid"},
		{CommandRequest{MinerIDs: []string{"a"}, Action: pb.Action_ACTION_BLINK, IdempotencyKey: strings.Repeat("k", 257)}, "idempotency_key"},
	}
	for _, b := range bad {
		err := ValidateCommand(b.req, 2)
		if !errors.Is(err, ErrInvalidCommand) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want ErrInvalidCommand containing %q", b.req, err, b.want)
		}
	}
}

func code(rec *pb.CommandRecord, id string) pb.ResultCode { return rec.Results[id].Code }

func TestCommandRecordLifecycle(t *testing.T) {
	const (
		pending   = pb.ResultCode_RESULT_CODE_PENDING
		running   = pb.ResultCode_RESULT_CODE_RUNNING
		succeeded = pb.ResultCode_RESULT_CODE_SUCCEEDED
		failed    = pb.ResultCode_RESULT_CODE_FAILED
		timeout   = pb.ResultCode_RESULT_CODE_TIMEOUT
	)
	rec := NewCommandRecord("c", CommandRequest{MinerIDs: []string{"a", "b", "c"}, Action: pb.Action_ACTION_REBOOT}, t0)
	if RecordStatus(rec) != pending {
		t.Fatal("new record not pending")
	}
	if !ApplyAck(rec, []string{"a", "b"}, running, "", t0) || code(rec, "a") != running || code(rec, "c") != pending {
		t.Fatal("ack did not start the node's part")
	}
	if SettleRecord(rec, t0) || rec.Status != running {
		t.Fatalf("status %v after ack", rec.Status)
	}
	// A result for a miner the command does not name is ignored; a final result is kept.
	ApplyReport(rec, []string{"a", "b"}, []*pb.MinerResult{{MinerId: "zz", Code: succeeded}, {MinerId: "a", Code: succeeded}}, false, t0)
	if code(rec, "a") != succeeded || rec.Results["a"].FinishedAtUnixMs == 0 {
		t.Fatal("result not applied")
	}
	ApplyReport(rec, nil, []*pb.MinerResult{{MinerId: "a", Code: failed}, {MinerId: "a", Code: running}}, false, t0)
	if code(rec, "a") != succeeded {
		t.Fatal("a final result was overwritten")
	}
	// done without a result for b: b fails.
	ApplyReport(rec, []string{"a", "b"}, nil, true, t0)
	if code(rec, "b") != failed || !strings.Contains(rec.Results["b"].Message, "without a result") {
		t.Fatalf("b after done: %v", rec.Results["b"])
	}
	// c's node refused.
	ApplyAck(rec, []string{"c"}, pb.ResultCode_RESULT_CODE_REFUSED_SEQ, "", t0)
	if code(rec, "c") != pb.ResultCode_RESULT_CODE_REFUSED_SEQ || !SettleRecord(rec, t0.Add(time.Second)) || rec.Status != failed {
		t.Fatalf("after refusal: %v %v", rec.Results["c"], rec.Status)
	}
	if SettleRecord(rec, t0.Add(2*time.Second)) || rec.FinishedAtUnixMs != t0.Add(time.Second).UnixMilli() {
		t.Fatal("SettleRecord finished twice")
	}

	rec = NewCommandRecord("d", CommandRequest{MinerIDs: []string{"a", "b"}, Action: pb.Action_ACTION_REBOOT}, t0)
	ApplyReport(rec, []string{"a", "b"}, []*pb.MinerResult{{MinerId: "a", Code: succeeded}}, false, t0)
	if !ApplyTimeout(rec, time.Minute, t0.Add(time.Minute)) || code(rec, "b") != timeout || code(rec, "a") != succeeded {
		t.Fatalf("timeout: %v", rec.Results)
	}
	if !SettleRecord(rec, t0) || rec.Status != timeout {
		t.Fatalf("status %v, want timeout", rec.Status)
	}
	if ApplyTimeout(rec, time.Minute, t0) {
		t.Fatal("timeout changed a finished record")
	}
}

func TestRecordStatusTable(t *testing.T) {
	c := func(codes ...pb.ResultCode) *pb.CommandRecord {
		rec := &pb.CommandRecord{Results: map[string]*pb.MinerResult{}}
		for i, x := range codes {
			rec.Results[fmt.Sprint(i)] = &pb.MinerResult{Code: x}
		}
		return rec
	}
	P, R, S, F, T := pb.ResultCode_RESULT_CODE_PENDING, pb.ResultCode_RESULT_CODE_RUNNING, pb.ResultCode_RESULT_CODE_SUCCEEDED,
		pb.ResultCode_RESULT_CODE_FAILED, pb.ResultCode_RESULT_CODE_TIMEOUT
	for _, tc := range []struct {
		rec  *pb.CommandRecord
		want pb.ResultCode
	}{
		{c(P, P), P}, {c(P, R), R}, {c(P, S), R}, {c(S, S), S}, {c(S, F), F}, {c(S, T), T}, {c(F, T), F},
		{c(pb.ResultCode_RESULT_CODE_UNSUPPORTED), F}, {c(pb.ResultCode_RESULT_CODE_DUPLICATE), R},
	} {
		if got := RecordStatus(tc.rec); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.rec.Results, got, tc.want)
		}
	}
}

func TestBuildPage(t *testing.T) {
	rows := map[string]*viewRow{}
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("m%d", i)
		node := "n1"
		if i%2 == 1 {
			node = "n2"
		}
		r := &viewRow{id: id, node: node, state: pb.MinerState_MINER_STATE_MINING, lastSeen: t0,
			tel: &pb.Telemetry{Pools: []*pb.Pool{{Url: "stratum+tcp://Pool" + fmt.Sprint(i%3)}}}}
		if i == 9 {
			r.state = pb.MinerState_MINER_STATE_STOPPED
			r.lastSeen = time.Time{}
		}
		r.reindex()
		rows[id] = r
		ids = append(ids, id)
	}
	up := func(n string) bool { return n == "n1" }
	p := buildPage(rows, ids, up, MinerQuery{}, t0.Add(10*time.Second), 30*time.Second)
	if p.Total != 10 || len(p.Items) != 10 || p.Limit != DefaultPageLimit || p.Counts["stale"] != 5 || p.Counts["mining"] != 9 {
		t.Fatalf("all: total %d counts %v", p.Total, p.Counts)
	}
	p = buildPage(rows, ids, up, MinerQuery{Stale: true}, t0, 30*time.Second)
	if p.Total != 5 || p.Items[0].ID != "m1" || !p.Items[0].Stale {
		t.Fatalf("stale (node n2 down): %+v", p)
	}
	p = buildPage(rows, ids, func(string) bool { return true }, MinerQuery{}, t0.Add(31*time.Second), 30*time.Second)
	if p.Counts["stale"] != 10 {
		t.Fatalf("old samples not stale: %v", p.Counts)
	}
	p = buildPage(rows, ids, up, MinerQuery{Search: "POOL1", Offset: 1, Limit: 1}, t0, 30*time.Second)
	if p.Total != 3 || len(p.Items) != 1 || p.Items[0].ID != "m4" {
		t.Fatalf("search+page: total %d items %+v", p.Total, p.Items)
	}
	p = buildPage(rows, ids, up, MinerQuery{States: []pb.MinerState{pb.MinerState_MINER_STATE_STOPPED}}, t0, 30*time.Second)
	if p.Total != 1 || p.Items[0].ID != "m9" {
		t.Fatalf("state filter: %+v", p)
	}
}

func TestApplyDesired(t *testing.T) {
	d, ch := applyDesired(Desired{}, &pb.CommandSpec{Action: pb.Action_ACTION_SET_POWER_TARGET, PowerTargetW: 2000}, t0)
	if !ch || d.PowerTargetW != 2000 || !d.UpdatedAt.Equal(t0) {
		t.Fatalf("%+v", d)
	}
	if _, ch := applyDesired(d, &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT}, t0.Add(time.Second)); ch {
		t.Fatal("reboot changed desired state")
	}
	d, _ = applyDesired(d, &pb.CommandSpec{Action: pb.Action_ACTION_STOP_MINING}, t0)
	d, _ = applyDesired(d, &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}, t0)
	if d.Run != "stopped" || d.Curtailment != "curtailed" {
		t.Fatalf("%+v", d)
	}
}

func TestNames(t *testing.T) {
	for _, n := range StateNames() {
		if s, ok := ParseState(n); !ok || StateName(s) != n {
			t.Errorf("state %q does not round-trip", n)
		}
	}
	for _, n := range ActionNames() {
		if a, ok := ParseAction(n); !ok || ActionName(a) != n {
			t.Errorf("action %q does not round-trip", n)
		}
	}
	if ResultCodeName(pb.ResultCode_RESULT_CODE_REFUSED_SEQ) != "refused_seq" || ResultName(pb.ResultCode_RESULT_CODE_REFUSED_SEQ) != "failed" {
		t.Error("result names")
	}
	if e := (&UnknownMinersError{IDs: strings.Split("a b c d e f g h i j k l", " ")}); !errors.Is(e, ErrUnknownMiner) || !strings.Contains(e.Error(), "and 2 more") {
		t.Errorf("unknown miners error: %v", e)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "Store is required") {
		t.Fatalf("missing store: %v", err)
	}
	c := DefaultConfig()
	c.OrgID, c.CommandTimeout = "a/b", 0
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "org id") || !strings.Contains(err.Error(), "CommandTimeout") {
		t.Fatalf("bad config: %v", err)
	}
}

func BenchmarkBuildPage20000(b *testing.B) {
	rows := map[string]*viewRow{}
	ids := make([]string, 0, 20000)
	for i := range 20000 {
		id := fmt.Sprintf("m%05d", i)
		r := &viewRow{id: id, node: "n1", lastSeen: t0, tel: &pb.Telemetry{Model: "S19"}}
		r.reindex()
		rows[id] = r
		ids = append(ids, id)
	}
	up := func(string) bool { return true }
	b.ResetTimer()
	for b.Loop() {
		buildPage(rows, ids, up, MinerQuery{Limit: 20000}, t0, time.Minute)
	}
}
