package grains

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/store"
	"google.golang.org/protobuf/proto"
)

func startFleet(t *testing.T, st store.Store, clk clock.Clock) *Fleet {
	t.Helper()
	sys := actors.NewSystem(slog.New(slog.NewTextHandler(io.Discard, nil)))
	cfg := DefaultConfig()
	cfg.Store, cfg.Clock, cfg.Logger = st, clk, slog.New(slog.NewTextHandler(io.Discard, nil))
	f, err := New(cfg, sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		sys.Shutdown()
	})
	return f
}

// A command that was running when the server went down, and whose timeout passed meanwhile, is timed out at
// start and leaves its node's queue.
func TestUnfinishedCommandTimesOutAfterRestart(t *testing.T) {
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(t0.Add(2 * time.Minute))
	rec := NewCommandRecord("c1", CommandRequest{MinerIDs: []string{"m1"}, Action: pb.Action_ACTION_REBOOT}, t0)
	if err := st.PutCommand(rec); err != nil {
		t.Fatal(err)
	}
	payload, _ := proto.Marshal(&pb.CommandPayload{MinerIds: []string{"m1"}, Spec: rec.Spec})
	if err := st.Enqueue("n1", &pb.ControlCommand{CommandId: "c1", NodeId: "n1", MonotonicSeq: 1, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(store.Batch{Devices: []*pb.Device{{MinerId: "m1", NodeId: "n1"}}}); err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, st, clk)
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := f.Command(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		_, queue, _ := st.NodeQueue("n1")
		if got.GetStatus() == pb.ResultCode_RESULT_CODE_TIMEOUT && len(queue) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %v, queue %d: want timeout and an empty queue", got.GetStatus(), len(queue))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.Command(ctx, "nope"); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("unknown command: %v", err)
	}
	// Unknown miners are refused and nothing is stored.
	_, err = f.IssueCommand(ctx, CommandRequest{MinerIDs: []string{"m1", "ghost"}, Action: pb.Action_ACTION_REBOOT})
	var um *UnknownMinersError
	if !errors.As(err, &um) || len(um.IDs) != 1 || um.IDs[0] != "ghost" {
		t.Fatalf("unknown miner: %v", err)
	}
	if recs, _ := st.Commands(); len(recs) != 1 {
		t.Fatalf("refused command stored: %d records", len(recs))
	}
	// Device registration refuses moving a miner to another node.
	if err := f.RegisterDevices(ctx, []*pb.Device{{MinerId: "m1", NodeId: "n2"}}); err == nil {
		t.Fatal("ownership move accepted")
	}
	if err := f.RegisterDevices(ctx, []*pb.Device{{MinerId: "m2", NodeId: "n2"}}); err != nil {
		t.Fatal(err)
	}
	if row, err := f.Miner(ctx, "m2"); err != nil || row.Node != "n2" || !row.Stale {
		t.Fatalf("registered miner: %+v %v", row, err)
	}
}

func TestFleetNotRunning(t *testing.T) {
	st, err := store.OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sys := actors.NewSystem(nil)
	defer sys.Shutdown()
	cfg := DefaultConfig()
	cfg.Store = st
	f, err := New(cfg, sys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ListMiners(context.Background(), MinerQuery{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("before Start: %v", err)
	}
}
