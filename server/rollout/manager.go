package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
	"google.golang.org/protobuf/proto"
)

// Request asks for a rolling firmware update.
type Request struct {
	// Site selects every miner of the site; MinerIDs names them instead (exactly one of the two).
	Site     string
	MinerIDs []string
	Firmware *pb.ArtifactRef
	// BatchSize miners are updated at a time.
	BatchSize int
	// MinHashrateRatio: after Settle, each updated miner's hashrate must be at least this share of its
	// hashrate before the update, in (0, 1].
	MinHashrateRatio float64
	Settle           time.Duration
	Actor            string
}

// Validate checks a request (miners not yet resolved).
func (r Request) Validate(maxMiners int) error {
	switch {
	case (r.Site == "") == (len(r.MinerIDs) == 0):
		return fmt.Errorf("%w: give exactly one of site or miner_ids", ErrInvalid)
	case len(r.MinerIDs) > maxMiners:
		return fmt.Errorf("%w: %d miners exceed the limit of %d", ErrInvalid, len(r.MinerIDs), maxMiners)
	case r.Firmware.GetSha256() == "":
		return fmt.Errorf("%w: artifact is required", ErrInvalid)
	case r.BatchSize < 1:
		return fmt.Errorf("%w: batch_size must be at least 1", ErrInvalid)
	case math.IsNaN(r.MinHashrateRatio) || r.MinHashrateRatio <= 0 || r.MinHashrateRatio > 1:
		return fmt.Errorf("%w: health_gate.min_hashrate_ratio must be in (0, 1]", ErrInvalid)
	case r.Settle < 0 || r.Settle > 24*time.Hour:
		return fmt.Errorf("%w: health_gate.settle must be between 0 and 24h", ErrInvalid)
	}
	seen := map[string]bool{}
	for _, id := range r.MinerIDs {
		if id == "" || seen[id] {
			return fmt.Errorf("%w: miner id %q empty or repeated", ErrInvalid, id)
		}
		seen[id] = true
	}
	return nil
}

// Rollout states.
const (
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateStopped   = "stopped" // a batch failed its health gate; later batches never ran
	StateFailed    = "failed"  // the rollout could not proceed (command refused, manager stopping)
)

// Batch states.
const (
	BatchPending  = "pending"
	BatchUpdating = "updating"
	BatchSettling = "settling"
	BatchPassed   = "passed"
	BatchFailed   = "failed"
)

// BatchStatus is one batch as GET /api/v1/rollouts/{id} shows it.
type BatchStatus struct {
	Index     int         `json:"index"`
	MinerIDs  []string    `json:"miner_ids"`
	State     string      `json:"state"`
	CommandID string      `json:"command_id,omitempty"`
	Gate      *GateResult `json:"gate,omitempty"`
	StartedAt time.Time   `json:"started_at,omitzero"`
	EndedAt   time.Time   `json:"ended_at,omitzero"`
}

// Status is a rollout's state.
type Status struct {
	ID               string        `json:"id"`
	State            string        `json:"state"`
	Reason           string        `json:"reason,omitempty"`
	Site             string        `json:"site,omitempty"`
	Artifact         string        `json:"artifact"`
	BatchSize        int           `json:"batch_size"`
	MinHashrateRatio float64       `json:"min_hashrate_ratio"`
	Settle           string        `json:"settle"`
	Actor            string        `json:"actor"`
	CreatedAt        time.Time     `json:"created_at"`
	EndedAt          time.Time     `json:"ended_at,omitzero"`
	Batches          []BatchStatus `json:"batches"`
}

// Manager runs rollouts. Each runs on a goroutine the Manager owns; Stop ends them.
type Manager struct {
	cfg   Config
	fleet Fleet
	log   *slog.Logger
	clk   clock.Clock

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	rollouts map[string]*Status
	order    []string
}

// NewManager returns a manager over fleet.
func NewManager(cfg Config, fleet Fleet) (*Manager, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if fleet == nil {
		return nil, errors.New("rollout: fleet is required")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, fleet: fleet, log: cfg.Logger, clk: cfg.Clock, ctx: ctx, cancel: cancel,
		rollouts: map[string]*Status{}}, nil
}

// Stop ends every running rollout (they are reported failed: "server stopping") and waits for them.
func (m *Manager) Stop() {
	m.cancel()
	m.wg.Wait()
}

// Start resolves the miners and starts the rollout; it returns its id.
func (m *Manager) Start(ctx context.Context, req Request) (string, error) {
	if err := req.Validate(m.cfg.MaxMiners); err != nil {
		return "", err
	}
	if m.ctx.Err() != nil {
		return "", ErrStopped
	}
	ids := slices.Clone(req.MinerIDs)
	if req.Site != "" {
		var err error
		if ids, err = m.siteMiners(ctx, req.Site); err != nil {
			return "", err
		}
		if len(ids) == 0 {
			return "", fmt.Errorf("%w: site %q has no miners", ErrInvalid, req.Site)
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	st := &Status{ID: "ro-" + hex.EncodeToString(b[:]), State: StateRunning, Site: req.Site, Artifact: req.Firmware.GetSha256(),
		BatchSize: req.BatchSize, MinHashrateRatio: req.MinHashrateRatio, Settle: req.Settle.String(), Actor: req.Actor,
		CreatedAt: m.clk.Now()}
	for i, batch := range Batches(ids, req.BatchSize) {
		st.Batches = append(st.Batches, BatchStatus{Index: i, MinerIDs: batch, State: BatchPending})
	}
	m.mu.Lock()
	m.rollouts[st.ID] = st
	m.order = append(m.order, st.ID)
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(st.ID, req)
	}()
	m.log.Info("rollout started", slog.String("rollout", st.ID), slog.Int("miners", len(ids)), slog.Int("batches", len(st.Batches)))
	return st.ID, nil
}

// Get returns a copy of the rollout's status.
func (m *Manager) Get(id string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.rollouts[id]
	if !ok {
		return Status{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	out := *st
	out.Batches = slices.Clone(st.Batches)
	return out, nil
}

func (m *Manager) siteMiners(ctx context.Context, site string) ([]string, error) {
	var ids []string
	for off := 0; ; {
		page, err := m.fleet.ListMiners(ctx, grains.MinerQuery{Offset: off, Limit: grains.MaxPageLimit})
		if err != nil {
			return nil, fmt.Errorf("rollout: list miners: %w", err)
		}
		for _, r := range page.Items {
			if r.Device.GetSite() == site {
				ids = append(ids, r.ID)
			}
		}
		off += len(page.Items)
		if len(page.Items) == 0 || off >= page.Total {
			return ids, nil
		}
	}
}

func (m *Manager) update(id string, f func(st *Status)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.rollouts[id])
}

func (m *Manager) finish(id, state, reason string) {
	m.update(id, func(st *Status) { st.State, st.Reason, st.EndedAt = state, reason, m.clk.Now() })
	m.log.Info("rollout ended", slog.String("rollout", id), slog.String("state", state), slog.String("reason", reason))
}

// run updates the batches in order and stops at the first that fails its gate.
func (m *Manager) run(id string, req Request) {
	st, _ := m.Get(id)
	for i, b := range st.Batches {
		gate, err := m.runBatch(id, i, b.MinerIDs, req)
		if err != nil {
			m.update(id, func(st *Status) { st.Batches[i].State, st.Batches[i].EndedAt = BatchFailed, m.clk.Now() })
			m.finish(id, StateFailed, fmt.Sprintf("batch %d: %v", i, err))
			return
		}
		passed := gate.Passed
		m.update(id, func(st *Status) {
			st.Batches[i].Gate, st.Batches[i].EndedAt = &gate, m.clk.Now()
			st.Batches[i].State = map[bool]string{true: BatchPassed, false: BatchFailed}[passed]
		})
		if !passed {
			m.finish(id, StateStopped, fmt.Sprintf("batch %d failed its health gate; %d later batches not started: %s", i, len(st.Batches)-i-1, gate.Reason))
			return
		}
	}
	m.finish(id, StateSucceeded, "")
}

func (m *Manager) runBatch(id string, i int, batch []string, req Request) (GateResult, error) {
	ctx := m.ctx
	pre := m.hashrates(ctx, batch, time.Time{})
	m.update(id, func(st *Status) { st.Batches[i].State, st.Batches[i].StartedAt = BatchUpdating, m.clk.Now() })
	issued, err := m.fleet.IssueCommand(ctx, grains.CommandRequest{MinerIDs: batch, Action: pb.Action_ACTION_FIRMWARE_UPDATE,
		Firmware: proto.Clone(req.Firmware).(*pb.ArtifactRef), IdempotencyKey: fmt.Sprintf("rollout/%s/%d", id, i), Actor: req.Actor})
	if err != nil {
		return GateResult{}, fmt.Errorf("issue the update: %w", err)
	}
	m.update(id, func(st *Status) { st.Batches[i].CommandID = issued.CommandID })
	rec, err := m.waitCommand(ctx, issued.CommandID)
	if err != nil {
		return GateResult{}, err
	}
	done := m.clk.Now()
	m.update(id, func(st *Status) { st.Batches[i].State = BatchSettling })
	if err := m.sleep(ctx, req.Settle); err != nil {
		return GateResult{}, err
	}
	post := m.hashrates(ctx, batch, done)
	return Evaluate(batch, pre, post, rec.GetResults(), req.MinHashrateRatio), nil
}

// hashrates reads each miner's latest 5 s hashrate; with after set, only samples observed after it count
// (a sample from before the update is no evidence of health): others read 0.
func (m *Manager) hashrates(ctx context.Context, ids []string, after time.Time) map[string]float64 {
	out := make(map[string]float64, len(ids))
	for _, id := range ids {
		row, err := m.fleet.Miner(ctx, id)
		if err != nil || row.Telemetry == nil || row.State != pb.MinerState_MINER_STATE_MINING {
			continue
		}
		if !after.IsZero() && !row.LastSeen.After(after) {
			continue
		}
		out[id] = row.Telemetry.GetHashrate_5SThs()
	}
	return out
}

func (m *Manager) waitCommand(ctx context.Context, cmd string) (*pb.CommandRecord, error) {
	deadline := m.clk.Now().Add(m.cfg.CommandWait)
	for {
		rec, err := m.fleet.Command(ctx, cmd)
		if err != nil {
			return nil, fmt.Errorf("read command %s: %w", cmd, err)
		}
		if n := grains.ResultName(rec.GetStatus()); n != "pending" && n != "running" {
			return rec, nil
		}
		if m.clk.Now().After(deadline) {
			return nil, fmt.Errorf("command %s not final after %s", cmd, m.cfg.CommandWait)
		}
		if err := m.sleep(ctx, m.cfg.PollInterval); err != nil {
			return nil, err
		}
	}
}

func (m *Manager) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := m.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrStopped, ctx.Err())
	}
}
