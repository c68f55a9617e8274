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
	reqs     map[string]Request
	pre      map[string][]map[string]float64 // by rollout id, by batch: hashrates before the batch's update
	order    []string
	resumed  bool
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
		rollouts: map[string]*Status{}, reqs: map[string]Request{}, pre: map[string][]map[string]float64{}}, nil
}

// Resume loads the stored rollouts (Config.Store) and goes on with those that were running when the server
// stopped: from their first batch that has not passed, judged against the hashrates read before its update.
// A batch whose update was already issued is issued again under the same idempotency key, which names the
// same command, so no miner is updated twice. Call it once the fleet's actors run; later calls do nothing.
func (m *Manager) Resume() error {
	m.mu.Lock()
	if m.resumed || m.cfg.Store == nil {
		m.resumed = true
		m.mu.Unlock()
		return nil
	}
	m.resumed = true
	m.mu.Unlock()
	recs, err := m.cfg.Store.Rollouts()
	if err != nil {
		return fmt.Errorf("rollout: load stored rollouts: %w", err)
	}
	var loaded []*Status
	for _, b := range recs {
		st, req, pre, err := decodeRecord(b)
		if err != nil {
			m.log.Error("stored rollout skipped", slog.Any("error", err))
			continue
		}
		m.mu.Lock()
		if _, dup := m.rollouts[st.ID]; !dup {
			m.rollouts[st.ID], m.reqs[st.ID], m.pre[st.ID] = st, req, pre
			loaded = append(loaded, st)
		}
		m.mu.Unlock()
	}
	slices.SortFunc(loaded, func(a, b *Status) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, st := range loaded {
		m.mu.Lock()
		m.order = append(m.order, st.ID)
		running, id, req := st.State == StateRunning, st.ID, m.reqs[st.ID]
		m.mu.Unlock()
		if !running {
			continue
		}
		from := firstUnpassed(st.Batches)
		m.log.Info("rollout resumed", slog.String("rollout", id), slog.Int("batch", from), slog.Int("batches", len(st.Batches)))
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.run(id, req, from)
		}()
	}
	return nil
}

// firstUnpassed is the index of the first batch that has not passed its gate.
func firstUnpassed(bs []BatchStatus) int {
	for i, b := range bs {
		if b.State != BatchPassed {
			return i
		}
	}
	return len(bs)
}

// Stop ends every running rollout and waits for them. With a Store they stay running in it and the next
// start resumes them; without one they are reported failed ("server stopping").
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
	req.MinerIDs = ids
	m.mu.Lock()
	m.rollouts[st.ID], m.reqs[st.ID], m.pre[st.ID] = st, req, make([]map[string]float64, len(st.Batches))
	m.order = append(m.order, st.ID)
	m.mu.Unlock()
	if err := m.persist(st.ID); err != nil {
		m.mu.Lock()
		delete(m.rollouts, st.ID)
		m.order = m.order[:len(m.order)-1]
		m.mu.Unlock()
		return "", err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(st.ID, req, 0)
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

// update changes a rollout's status and persists it. A failed write is logged: the rollout goes on, and a
// restart resumes it from the last state stored (an earlier batch, whose command is the same by key).
func (m *Manager) update(id string, f func(st *Status)) {
	m.mu.Lock()
	f(m.rollouts[id])
	m.mu.Unlock()
	if err := m.persist(id); err != nil {
		m.log.Error("rollout state not stored", slog.String("rollout", id), slog.Any("error", err))
	}
}

// persist writes the rollout's record (nothing without a Store). Only the rollout's own runner (or Start,
// before the runner exists) calls it, so writes of one rollout never race each other.
func (m *Manager) persist(id string) error {
	if m.cfg.Store == nil {
		return nil
	}
	m.mu.Lock()
	b, err := encodeRecord(m.rollouts[id], m.reqs[id], m.pre[id])
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if err := m.cfg.Store.PutRollout(id, b); err != nil {
		return fmt.Errorf("rollout %s: store: %w", id, err)
	}
	return nil
}

// preUpdate returns the batch's hashrates from before its update, reading and storing them the first time.
func (m *Manager) preUpdate(ctx context.Context, id string, i int, batch []string) map[string]float64 {
	m.mu.Lock()
	pre := m.pre[id][i]
	m.mu.Unlock()
	if pre != nil {
		return pre
	}
	pre = m.hashrates(ctx, batch, time.Time{})
	m.update(id, func(*Status) { m.pre[id][i] = pre })
	return pre
}

func (m *Manager) finish(id, state, reason string) {
	m.update(id, func(st *Status) { st.State, st.Reason, st.EndedAt = state, reason, m.clk.Now() })
	m.log.Info("rollout ended", slog.String("rollout", id), slog.String("state", state), slog.String("reason", reason))
}

// run updates the batches in order, from batch from, and stops at the first that fails its gate.
func (m *Manager) run(id string, req Request, from int) {
	st, _ := m.Get(id)
	for i := from; i < len(st.Batches); i++ {
		gate, err := m.runBatch(id, i, st.Batches[i].MinerIDs, req)
		if errors.Is(err, ErrStopped) && m.cfg.Store != nil {
			m.log.Info("rollout paused: the server is stopping; the next start resumes it", slog.String("rollout", id), slog.Int("batch", i))
			return
		}
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
	pre := m.preUpdate(ctx, id, i, batch)
	m.update(id, func(st *Status) {
		if st.Batches[i].StartedAt.IsZero() {
			st.Batches[i].StartedAt = m.clk.Now()
		}
		st.Batches[i].State = BatchUpdating
	})
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

// RunningArtifacts returns the sha256 of the firmware every running rollout installs (the artifact store's
// sweep keeps them).
func (m *Manager) RunningArtifacts() map[string]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]bool{}
	for _, st := range m.rollouts {
		if st.State == StateRunning {
			out[st.Artifact] = true
		}
	}
	return out
}
