package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashfleet/hashfleet/actors/actortest"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

func TestMain(m *testing.M) { actortest.VerifyTestMain(m) }

// twinFleet is an in-memory fleet: commands finish at once with the outcome fail gives each miner, and
// hashrates are whatever rate says, sampled at the clock's now.
type twinFleet struct {
	clk  *clock.Fake
	mu   sync.Mutex
	rows map[string]grains.MinerRow
	cmds map[string]*pb.CommandRecord
	// after an update, a miner hashes at factor of its rate (default 1); fail makes its update fail.
	factor map[string]float64
	fail   map[string]string
	issued [][]string
	byKey  map[string]string // idempotency key → command id: the same key names the same command
	start  time.Time
}

func newTwin(clk *clock.Fake, n int, site func(i int) string) *twinFleet {
	f := &twinFleet{clk: clk, rows: map[string]grains.MinerRow{}, cmds: map[string]*pb.CommandRecord{},
		factor: map[string]float64{}, fail: map[string]string{}, start: clk.Now()}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("m%02d", i)
		f.rows[id] = grains.MinerRow{ID: id, State: pb.MinerState_MINER_STATE_MINING, LastSeen: clk.Now(),
			Device: &pb.Device{MinerId: id, Site: site(i)}, Telemetry: &pb.Telemetry{Hashrate_5SThs: 100}}
	}
	return f
}

func (f *twinFleet) IssueCommand(_ context.Context, req grains.CommandRequest) (grains.IssuedCommand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.byKey[req.IdempotencyKey]; ok && req.IdempotencyKey != "" {
		return grains.IssuedCommand{CommandID: id}, nil
	}
	id := fmt.Sprintf("c%d", len(f.cmds))
	if f.byKey == nil {
		f.byKey = map[string]string{}
	}
	f.byKey[req.IdempotencyKey] = id
	rec := &pb.CommandRecord{CommandId: id, Spec: &pb.CommandSpec{Action: req.Action, Firmware: req.Firmware},
		Status: pb.ResultCode_RESULT_CODE_SUCCEEDED, Results: map[string]*pb.MinerResult{}}
	for _, m := range req.MinerIDs {
		r := &pb.MinerResult{MinerId: m, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}
		if why := f.fail[m]; why != "" {
			r.Code, r.Message, rec.Status = pb.ResultCode_RESULT_CODE_FAILED, why, pb.ResultCode_RESULT_CODE_FAILED
		}
		rec.Results[m] = r
		row := f.rows[m]
		fac, ok := f.factor[m]
		if !ok {
			fac = 1
		}
		row.Telemetry = &pb.Telemetry{Hashrate_5SThs: 100 * fac}
		row.LastSeen = f.clk.Now().Add(time.Millisecond) // a fresh sample after the update
		f.rows[m] = row
	}
	f.cmds[id] = rec
	f.issued = append(f.issued, req.MinerIDs)
	return grains.IssuedCommand{CommandID: id}, nil
}

func (f *twinFleet) Command(_ context.Context, id string) (*pb.CommandRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cmds[id], nil
}

// Miner answers the miner's row; an updated miner keeps reporting, so its sample is never older than now.
func (f *twinFleet) Miner(_ context.Context, id string) (grains.MinerRow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	row := f.rows[id]
	if row.LastSeen.After(f.start) {
		row.LastSeen = maxTime(row.LastSeen, f.clk.Now())
	}
	return row, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (f *twinFleet) ListMiners(_ context.Context, q grains.MinerQuery) (grains.MinerPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var items []grains.MinerRow
	for i := 0; i < len(f.rows); i++ {
		items = append(items, f.rows[fmt.Sprintf("m%02d", i)])
	}
	end := min(q.Offset+q.Limit, len(items))
	return grains.MinerPage{Total: len(items), Offset: q.Offset, Items: items[q.Offset:end]}, nil
}

func startManager(t *testing.T, f *twinFleet) *Manager {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Clock, cfg.PollInterval = f.clk, 100*time.Millisecond
	m, err := NewManager(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// drive advances the fake clock until the rollout is no longer running.
func drive(t *testing.T, m *Manager, clk *clock.Fake, id string) Status {
	t.Helper()
	return driveStep(t, m, clk, id, 100*time.Millisecond)
}

// driveStep is drive with fake time advancing step at a time.
func driveStep(t *testing.T, m *Manager, clk *clock.Fake, id string, step time.Duration) Status {
	t.Helper()
	for i := 0; i < 10000; i++ {
		st, err := m.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != StateRunning {
			return st
		}
		clk.Advance(step)
		time.Sleep(time.Millisecond)
	}
	t.Fatal("rollout never ended")
	return Status{}
}

var fw = &pb.ArtifactRef{Sha256: strings.Repeat("a", 64), Size: 10}

func TestRolloutOfASiteSucceeds(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 10, func(i int) string { return map[bool]string{true: "east", false: "west"}[i%2 == 0] })
	m := startManager(t, f)
	id, err := m.Start(context.Background(), Request{Site: "east", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := drive(t, m, clk, id)
	if st.State != StateSucceeded || len(st.Batches) != 3 {
		t.Fatalf("%+v", st)
	}
	for _, b := range f.issued {
		for _, id := range b {
			if id[2]%2 != 0 { // m01, m03 ... are west
				t.Fatalf("updated %s of another site", id)
			}
		}
	}
	if _, err := m.Start(context.Background(), Request{Site: "north", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty site: %v", err)
	}
}

func TestRolloutStopsAtAFailedUpdate(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 6, func(int) string { return "s" })
	f.fail["m03"] = "flash write error"
	m := startManager(t, f)
	id, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9, Settle: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := drive(t, m, clk, id)
	if st.State != StateStopped || !strings.Contains(st.Reason, "m03: update failed: flash write error") || len(f.issued) != 2 {
		t.Fatalf("%s %q, %d batches issued", st.State, st.Reason, len(f.issued))
	}
	if st.Batches[2].State != BatchPending {
		t.Fatalf("batch after the failure: %s", st.Batches[2].State)
	}
}

func TestStopEndsARunningRollout(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	f := newTwin(clk, 4, func(int) string { return "s" })
	cfg := DefaultConfig()
	cfg.Clock = clk
	m, err := NewManager(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	id, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9, Settle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m.Stop() // the first batch is settling for an hour of fake time
	st, _ := m.Get(id)
	if st.State != StateFailed || !strings.Contains(st.Reason, "stopped") {
		t.Fatalf("%s %q", st.State, st.Reason)
	}
	if _, err := m.Start(context.Background(), Request{Site: "s", Firmware: fw, BatchSize: 2, MinHashrateRatio: 0.9}); !errors.Is(err, ErrStopped) {
		t.Fatalf("start after stop: %v", err)
	}
	actortest.VerifyNone(t)
}
