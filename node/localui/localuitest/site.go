// Package localuitest is an in-memory twin of the node behind the local UI (localui.Site), for tests and
// demos: miners whose state changes at once when a command is submitted, a settable cloud link, and a local
// command log stamped as the node stamps it (local_origin, idempotency key, HLC, lease epoch).
package localuitest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/hlc"
	"github.com/hashfleet/hashfleet/node/localui"
	"google.golang.org/protobuf/proto"
)

// Site is an in-memory localui.Site. Safe for concurrent use.
type Site struct {
	clock  clock.Clock
	hlc    *hlc.Clock
	nodeID string

	mu        sync.Mutex
	epoch     uint64
	miners    map[string]*localui.MinerView
	link      localui.LinkView
	log       []*pb.LocalCommand
	byKey     map[string]keyed
	submitted []localui.LocalCommandRequest
	calls     int
	failWith  error
}

type keyed struct {
	req localui.LocalCommandRequest
	id  string
}

// New returns a site of n miners "sim-1" … "sim-n", all mining, with the cloud link up since now.
func New(nodeID string, n int, c clock.Clock) *Site {
	if c == nil {
		c = clock.Real()
	}
	h, err := hlc.New(hlc.Config{NodeID: nodeID}, c)
	if err != nil {
		panic(err)
	}
	s := &Site{clock: c, hlc: h, nodeID: nodeID, epoch: 1, miners: map[string]*localui.MinerView{},
		byKey: map[string]keyed{}}
	now := c.Now()
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("sim-%d", i)
		s.miners[id] = &localui.MinerView{
			ID: id, Model: "Antminer S19j Pro", Firmware: "sim-1.0", Address: fmt.Sprintf("127.1.0.%d:4028", i%250+1),
			State: "mining", StateSince: now, HashrateTHs: 100 + float64(i%7), HashrateAvgTHs: 100,
			TempMaxC: 60 + float64(i%10), PowerW: 3050, PowerTargetW: 3100, FansRPM: []int32{4800, 4820},
			UptimeS: 3600, LastPollAt: now,
			Boards: []localui.BoardView{{Index: 0, TempC: 58, ChipTempC: 60 + float64(i%10), HashrateTHs: 34, Chips: 126}},
			Pools:  []localui.PoolView{{URL: "stratum+tcp://pool.example:3333", User: "site." + id, Status: "Alive", Active: true}},
		}
	}
	s.link = localui.LinkView{Configured: true, Up: true, Since: now}
	return s
}

// SetLink sets what Link reports.
func (s *Site) SetLink(l localui.LinkView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.link = l
}

// SetMiner adds or replaces a miner.
func (s *Site) SetMiner(v localui.MinerView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := v
	s.miners[v.ID] = &cp
}

// SetMinerError sets a miner's error string (as a hostile or broken miner would report it).
func (s *Site) SetMinerError(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.miners[id]; ok {
		m.Error = msg
	}
}

// SetLeaseEpoch sets the epoch stamped on later commands.
func (s *Site) SetLeaseEpoch(e uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch = e
}

// FailSubmit makes every later Submit and Curtailment fail with err (nil: succeed again).
func (s *Site) FailSubmit(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = err
}

// Submitted returns the distinct requests that made a command, in order (duplicates by idempotency key are
// not repeated).
func (s *Site) Submitted() []localui.LocalCommandRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.submitted)
}

// SubmitCalls counts every Submit and Curtailment call, duplicates and failures included.
func (s *Site) SubmitCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// LocalCommands returns copies of the stamped local command log, oldest first.
func (s *Site) LocalCommands() []*pb.LocalCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*pb.LocalCommand, len(s.log))
	for i, c := range s.log {
		out[i] = proto.Clone(c).(*pb.LocalCommand)
	}
	return out
}

// Miners implements localui.Site.
func (s *Site) Miners(ctx context.Context) ([]localui.MinerView, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]localui.MinerView, 0, len(s.miners))
	for _, m := range s.miners {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return minerLess(out[i].ID, out[j].ID) })
	return out, nil
}

// minerLess sorts "sim-2" before "sim-10".
func minerLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Miner implements localui.Site.
func (s *Site) Miner(ctx context.Context, id string) (localui.MinerView, error) {
	if err := ctx.Err(); err != nil {
		return localui.MinerView{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.miners[id]
	if !ok {
		return localui.MinerView{}, fmt.Errorf("miner %q: %w", id, localui.ErrUnknownMiner)
	}
	return *m, nil
}

// Link implements localui.Site.
func (s *Site) Link(ctx context.Context) localui.LinkView {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// Submit implements localui.Site: idempotent on the key, stamps and logs the command, then applies it to the
// miners at once (stop → stopped, start/uncurtail → mining, reboot → rebooting, curtail → curtailed,
// set_power_target → the new target).
func (s *Site) Submit(ctx context.Context, req localui.LocalCommandRequest) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := req.Validate(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failWith != nil {
		return "", s.failWith
	}
	if k, ok := s.byKey[req.IdempotencyKey]; ok {
		if !k.req.Same(req) {
			return "", fmt.Errorf("key %q: %w", req.IdempotencyKey, localui.ErrIdempotencyKeyReused)
		}
		return k.id, nil
	}
	ids := req.MinerIDs
	if req.All {
		ids = make([]string, 0, len(s.miners))
		for id := range s.miners {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return minerLess(ids[i], ids[j]) })
	}
	id := fmt.Sprintf("lc-%d", len(s.log)+1)
	cmd := &pb.LocalCommand{
		CommandId: id, IdempotencyKey: req.IdempotencyKey, Hlc: s.hlc.Now(), LeaseEpoch: s.epoch,
		Actor: req.Actor, MinerIds: slices.Clone(ids), Spec: req.Spec(), LocalOrigin: true,
	}
	now := s.clock.Now()
	for _, mid := range ids {
		r := &pb.MinerResult{MinerId: mid, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED,
			StartedAtUnixMs: now.UnixMilli(), FinishedAtUnixMs: now.UnixMilli()}
		m, ok := s.miners[mid]
		if !ok {
			r.Code, r.Message = pb.ResultCode_RESULT_CODE_UNKNOWN_MINER, "no such miner on this node"
		} else {
			apply(m, req, now)
		}
		cmd.Results = append(cmd.Results, r)
	}
	s.log = append(s.log, cmd)
	s.byKey[req.IdempotencyKey] = keyed{req: req, id: id}
	s.submitted = append(s.submitted, req)
	return id, nil
}

func apply(m *localui.MinerView, req localui.LocalCommandRequest, now time.Time) {
	state := m.State
	switch req.Action {
	case pb.Action_ACTION_STOP_MINING:
		state = "stopped"
	case pb.Action_ACTION_START_MINING, pb.Action_ACTION_UNCURTAIL:
		state = "mining"
	case pb.Action_ACTION_REBOOT:
		state = "rebooting"
	case pb.Action_ACTION_CURTAIL:
		state = "curtailed"
	case pb.Action_ACTION_SET_POWER_TARGET:
		m.PowerTargetW = req.PowerTargetW
	}
	if state != m.State {
		m.State, m.StateSince = state, now
	}
	switch m.State {
	case "mining":
		m.HashrateTHs, m.PowerW = 100, 3050
	default:
		m.HashrateTHs, m.PowerW = 0, 15
	}
}

// Commands implements localui.Site: newest first.
func (s *Site) Commands(ctx context.Context, limit int) ([]localui.CommandView, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []localui.CommandView
	for i := len(s.log) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, localui.CommandViewFromPB(s.log[i]))
	}
	return out, nil
}

// Curtailment implements localui.Site as curtail/uncurtail of every miner.
func (s *Site) Curtailment(ctx context.Context, req localui.CurtailmentRequest) (string, error) {
	return s.Submit(ctx, req.AsCommand())
}

var _ localui.Site = (*Site)(nil)
