package gate

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
)

// epochState is a lease stand-in for EpochCheck: 0 writes, 1 fenced, 2 confirming, under epoch 5.
type epochState struct{ v atomic.Int32 }

func (e *epochState) check(epoch uint64) error {
	switch {
	case e.v.Load() == 1:
		return fmt.Errorf("%w: test", ErrFenced)
	case e.v.Load() == 2 && epoch == 5:
		return fmt.Errorf("%w: %w: test", ErrFenced, ErrLeasePending)
	case epoch != 5:
		return fmt.Errorf("%w: %d", ErrWrongEpoch, epoch)
	}
	return nil
}

func epochCommand(id string, seq, epoch uint64, ids ...string) *pb.ControlCommand {
	c := command(id, "n1", seq, ids...)
	c.LeaseEpoch = epoch
	return c
}

// TestEpochCheck: miner commands of another epoch are REFUSED_EPOCH, any while fenced FENCED, neither
// consumes the seq; node-control commands (keys, discovery, pairing, policy, curtailment) are not checked.
func TestEpochCheck(t *testing.T) {
	st, closer := memStore(t)
	var e epochState
	e.v.Store(1)
	h := newHarness(t, st, closer, func(c *Config) { c.EpochCheck = e.check })
	if a := h.send(epochCommand("c1", 1, 5, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatalf("fenced: %v", a)
	}
	e.v.Store(0)
	if a := h.send(epochCommand("c2", 1, 4, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_REFUSED_EPOCH {
		t.Fatalf("wrong epoch: %v", a)
	}
	if h.mark() != 0 {
		t.Fatalf("a refused epoch consumed seq: mark %d", h.mark())
	}
	if a := h.send(epochCommand("c3", 1, 5, "m-1")); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
		t.Fatalf("current epoch: %v", a)
	}
	if !epochChecked(&pb.CommandPayload{MinerIds: []string{"m"}, Spec: &pb.CommandSpec{}}, nil) ||
		epochChecked(&pb.CommandPayload{Discovery: &pb.DiscoveryRequest{}}, nil) ||
		epochChecked(&pb.CommandPayload{KeyAnnouncement: &pb.KeyAnnouncement{}}, nil) ||
		epochChecked(&pb.CommandPayload{Curtail: &pb.CurtailRequest{}}, nil) || !epochChecked(nil, fmt.Errorf("bad")) {
		t.Fatal("epochChecked")
	}
}

// TestCommandsHeldWhileTheLeaseIsConfirmed: commands of the epoch a node was just handed wait, in order, with
// every command behind them, until the lease is confirmed; then they run in seq order. A hold that outlasts
// maxLeaseHold is decided as usual (FENCED).
func TestCommandsHeldWhileTheLeaseIsConfirmed(t *testing.T) {
	st, closer := memStore(t)
	var e epochState
	e.v.Store(2)
	h := newHarness(t, st, closer, func(c *Config) { c.EpochCheck = e.check })
	for i, id := range []string{"h1", "h2", "h3"} {
		h.sys.Root.Send(h.cloudPID, send{gate: h.gate, cmd: epochCommand(id, uint64(i+1), 5, "m-1")})
	}
	time.Sleep(50 * time.Millisecond)
	h.clk.Advance(3 * leaseRetryStep)
	time.Sleep(50 * time.Millisecond)
	if a := h.cloud.ack("h1"); a != nil {
		t.Fatalf("acked while the lease is being confirmed: %v", a)
	}
	e.v.Store(0) // the RENEW was granted
	h.clk.Advance(leaseRetryStep)
	for _, id := range []string{"h1", "h2", "h3"} {
		testutil.Eventually(t, "ack of "+id, func() bool { return h.cloud.ack(id) != nil })
		if a := h.cloud.ack(id); a.GetCode() != pb.ResultCode_RESULT_CODE_RUNNING {
			t.Fatalf("%s after confirmation: %v", id, a)
		}
	}
	if h.mark() != 3 {
		t.Fatalf("mark %d, want 3 (all three ran, in order)", h.mark())
	}

	e.v.Store(2)
	h.sys.Root.Send(h.cloudPID, send{gate: h.gate, cmd: epochCommand("h4", 4, 5, "m-1")})
	time.Sleep(50 * time.Millisecond)
	for range int(maxLeaseHold/leaseRetryStep) + 2 {
		h.clk.Advance(leaseRetryStep)
		time.Sleep(2 * time.Millisecond)
	}
	testutil.Eventually(t, "ack of h4", func() bool { return h.cloud.ack("h4") != nil })
	if a := h.cloud.ack("h4"); a.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatalf("held past the limit: %v", a)
	}
	if h.mark() != 3 {
		t.Fatalf("a bounced command consumed its seq: mark %d", h.mark())
	}
}
