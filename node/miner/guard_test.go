package miner

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/miners"
	"github.com/hashfleet/hashfleet/miners/cgminer"
	"github.com/hashfleet/hashfleet/miners/sim"
	"github.com/hashfleet/hashfleet/node/internal/testutil"
	"github.com/hashfleet/hashfleet/node/writelog"
)

// testGuard is a lease stand-in: fenced, or allowed under an epoch until an instant.
type testGuard struct {
	mu     sync.Mutex
	fenced bool
	epoch  uint64
	until  time.Time
	calls  int
}

func (g *testGuard) set(fenced bool, epoch uint64, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fenced, g.epoch, g.until = fenced, epoch, until
}

func (g *testGuard) BeginWrite() (uint64, time.Time, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.fenced {
		return g.epoch, time.Time{}, fmt.Errorf("%w (test, epoch %d)", ErrFenced, g.epoch)
	}
	return g.epoch, g.until, nil
}

func (g *testGuard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// TestWritesCheckTheLease runs a MinerActor against a simulated miner over TCP with a write guard: a fenced
// node's command never reaches the miner (FENCED, logged with its epoch, not remembered, so the same command
// runs once the node may write), polls go on while fenced, and the permit's deadline cuts a slow write short.
func TestWritesCheckTheLease(t *testing.T) {
	fleet, err := sim.Start(sim.Config{Count: 1, Seed: 3, SlowDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	cfg := DefaultConfig()
	cfg.PollInterval, cfg.PollJitter, cfg.PollTimeout = 50*time.Millisecond, 5*time.Millisecond, time.Second
	cfg.CommandTimeout = 10 * time.Second
	drivers := func(d *pb.Device) (miners.Driver, error) {
		return cgminer.New(d, cgminer.Config{ReadTimeout: 5 * time.Second}), nil
	}
	guard, wlog := &testGuard{fenced: true, epoch: 4}, writelog.NewMemory()
	h := startHarness(t, cfg, fleet.Devices(), drivers, clock.Real(), func(h *harness) { h.guard, h.writes = guard, wlog })
	id := h.ids()[0]
	m := fleet.Miner(id)
	testutil.Eventually(t, "mining", func() bool { return h.rec.state(id) == mining })

	// Fenced: refused before any I/O; polls continue.
	polled := h.rec.sampleCount(id)
	h.execute(id, "cmd-1", "key-1", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "fenced result", func() bool { return len(h.rec.resultsFor("cmd-1")) == 1 })
	if r := h.rec.resultsFor("cmd-1")[0].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatalf("fenced command: %v", r)
	}
	if w := m.WriteLog(); len(w) != 0 {
		t.Fatalf("a fenced node wrote to the miner: %+v", w)
	}
	testutil.Eventually(t, "polls while fenced", func() bool { return h.rec.sampleCount(id) >= polled+3 })
	es := wlog.Entries()
	if len(es) != 1 || es[0].Code != writelog.CodeFenced || es[0].Epoch != 4 || es[0].Command != "cmd-1" || es[0].Miner != id || es[0].Wrote() {
		t.Fatalf("write log after a fenced write: %+v", es)
	}

	// Allowed under epoch 5: the same command (same idempotency key) now runs.
	guard.set(false, 5, time.Now().Add(time.Minute))
	h.execute(id, "cmd-1", "key-1", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "second result", func() bool { return len(h.rec.resultsFor("cmd-1")) == 2 })
	if r := h.rec.resultsFor("cmd-1")[1].Result; r.GetCode() != pb.ResultCode_RESULT_CODE_SUCCEEDED {
		t.Fatalf("command under a lease: %v", r)
	}
	if w := m.WriteLog(); len(w) != 1 || w[0].Command != "restart" {
		t.Fatalf("miner writes %+v, want one restart", w)
	}
	es = wlog.Entries()
	last := es[len(es)-1]
	if len(es) != 2 || last.Epoch != 5 || last.Code != "succeeded" || last.Action != "reboot" || last.Finish.Before(last.Start) {
		t.Fatalf("write log: %+v", es)
	}
	// Before a write's entry: at least one check per command, none per poll.
	if n := guard.count(); n != 2 {
		t.Fatalf("guard asked %d times, want once per write (2)", n)
	}

	// The permit's deadline bounds the write's I/O: a slow miner is cut off at Until, not CommandTimeout.
	testutil.Eventually(t, "mining after reboot", func() bool { return h.rec.state(id) == mining })
	m.SetFault(sim.FaultSlow)
	guard.set(false, 5, time.Now().Add(300*time.Millisecond))
	start := time.Now()
	h.execute(id, "cmd-2", "key-2", pb.Action_ACTION_REBOOT)
	testutil.Eventually(t, "deadline result", func() bool { return len(h.rec.resultsFor("cmd-2")) == 1 })
	took := time.Since(start)
	r := h.rec.resultsFor("cmd-2")[0].Result
	if r.GetCode() != pb.ResultCode_RESULT_CODE_TIMEOUT && r.GetCode() != pb.ResultCode_RESULT_CODE_FAILED {
		t.Fatalf("write past the permit: %v", r)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("write past the permit took %s: the permit's Until must bound it", took)
	}
	m.SetFault(sim.FaultNone)
}

func TestResultCodeFenced(t *testing.T) {
	if c := resultCode(fmt.Errorf("wrapped: %w", ErrFenced)); c != pb.ResultCode_RESULT_CODE_FENCED {
		t.Fatal(c)
	}
	if !errors.Is(fmt.Errorf("%w", ErrFenced), ErrFenced) {
		t.Fatal("sentinel")
	}
}
