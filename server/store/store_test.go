package store

import (
	"errors"
	"strconv"
	"testing"

	"github.com/hashfleet/hashfleet/messages/pb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReopenFindsEverything(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	dev := &pb.Device{MinerId: "m1", NodeId: "n1", Address: "10.0.0.1:4028", Protocol: pb.Protocol_PROTOCOL_CGMINER}
	tel := &pb.Telemetry{MinerId: "m1", ObservedAtUnixMs: 1000, State: pb.MinerState_MINER_STATE_MINING, Hashrate_5SThs: 110}
	if err := s.Apply(Batch{Devices: []*pb.Device{dev}, Telemetry: []*pb.Telemetry{tel}, Mark: &Mark{Node: "n1", Kind: KindTelemetry, Seq: 7}}); err != nil {
		t.Fatal(err)
	}
	active := &pb.CommandRecord{CommandId: "c1", MinerIds: []string{"m1"}, IdempotencyKey: "k1",
		Status: pb.ResultCode_RESULT_CODE_RUNNING, NodeSeqs: map[string]uint64{"n1": 1}}
	done := &pb.CommandRecord{CommandId: "c2", MinerIds: []string{"m1"}, Status: pb.ResultCode_RESULT_CODE_SUCCEEDED, FinishedAtUnixMs: 5}
	for _, r := range []*pb.CommandRecord{active, done} {
		if err := s.PutCommand(r); err != nil {
			t.Fatal(err)
		}
	}
	cmd := &pb.ControlCommand{CommandId: "c1", NodeId: "n1", MonotonicSeq: 1}
	if err := s.Enqueue("n1", cmd); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue("n1", &pb.ControlCommand{CommandId: "c3", NodeId: "n1", MonotonicSeq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Dequeue("n1", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseSeq("n2", 40); err != nil {
		t.Fatal(err)
	}
	if err := s.RaiseSeq("n2", 3); err != nil { // never lowers
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	devs, err := s.Devices()
	if err != nil || len(devs) != 1 || !proto.Equal(devs[0], dev) {
		t.Fatalf("devices after reopen: %v, %v", devs, err)
	}
	tels, err := s.LatestTelemetry()
	if err != nil || len(tels) != 1 || !proto.Equal(tels[0], tel) {
		t.Fatalf("telemetry after reopen: %v, %v", tels, err)
	}
	marks, err := s.Marks()
	if err != nil || len(marks) != 1 || marks[0] != (Mark{Node: "n1", Kind: KindTelemetry, Seq: 7}) {
		t.Fatalf("marks after reopen: %v, %v", marks, err)
	}
	got, err := s.Command("c1")
	if err != nil || !proto.Equal(got, active) {
		t.Fatalf("command after reopen: %v, %v", got, err)
	}
	byKey, err := s.CommandByIdempotencyKey("k1")
	if err != nil || byKey.GetCommandId() != "c1" {
		t.Fatalf("idempotency key after reopen: %v, %v", byKey, err)
	}
	if _, err := s.CommandByIdempotencyKey("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	act, err := s.ActiveCommands()
	if err != nil || len(act) != 1 || act[0].GetCommandId() != "c1" {
		t.Fatalf("active commands after reopen: %v, %v", act, err)
	}
	all, err := s.Commands()
	if err != nil || len(all) != 2 {
		t.Fatalf("all commands: %d, %v", len(all), err)
	}
	seq, queue, err := s.NodeQueue("n1")
	if err != nil || seq != 2 || len(queue) != 1 || !proto.Equal(queue[0], cmd) {
		t.Fatalf("n1 queue after reopen: seq=%d queue=%v err=%v", seq, queue, err)
	}
	seq, queue, err = s.NodeQueue("n2")
	if err != nil || seq != 40 || len(queue) != 0 {
		t.Fatalf("n2 after reopen: seq=%d queue=%v err=%v", seq, queue, err)
	}
	nodes, err := s.NodeIDs()
	if err != nil || len(nodes) != 2 {
		t.Fatalf("node ids: %v, %v", nodes, err)
	}
	if _, err := s.Command("zzz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing command: %v", err)
	}
}

func TestApplyManySamplesInOneBatch(t *testing.T) {
	s, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b Batch
	for i := range 20000 {
		b.Telemetry = append(b.Telemetry, &pb.Telemetry{MinerId: "m" + strconv.Itoa(i), Hashrate_5SThs: float64(i)})
	}
	if err := s.Apply(b); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestTelemetry()
	if err != nil || len(got) != 20000 {
		t.Fatalf("got %d samples, %v", len(got), err)
	}
}

func TestInvalidIDs(t *testing.T) {
	for _, id := range []string{"", "a/b", "a b", string(make([]byte, MaxIDLen+1))} {
		if err := ValidNodeID(id); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidNodeID(%q) = %v", id, err)
		}
	}
	if err := ValidID("miner/with/slash"); err != nil {
		t.Errorf("miner ids may contain '/': %v", err)
	}
	if err := ValidID("bad\x00"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("control char accepted: %v", err)
	}
}
