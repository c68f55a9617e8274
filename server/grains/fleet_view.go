package grains

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
)

// FleetView is the fleet read model: one row per miner (latest telemetry, state, node, desired state) and
// one status per node, kept for the API. Ingest and the node and miner actors push updates into it; a list
// of 20,000 miners is one request to this actor. It owns its maps; what it hands out are copies of rows
// whose telemetry and device pointers are never mutated.
type FleetView struct {
	clk        clock.Clock
	staleAfter time.Duration
	log        *slog.Logger

	rows   map[string]*viewRow
	ids    []string // sorted
	nodes  map[string]NodeStatus
	sorted bool
}

func newFleetView(clk clock.Clock, staleAfter time.Duration, log *slog.Logger) *FleetView {
	return &FleetView{clk: clk, staleAfter: staleAfter, log: log, rows: map[string]*viewRow{},
		nodes: map[string]NodeStatus{}, sorted: true}
}

func (v *FleetView) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started, *actor.Stopping, *actor.Stopped, *actor.Restarting:
	case *viewSeed:
		v.onSeed(m)
	case *viewDevices:
		v.onDevices(m)
	case *viewTelemetry:
		v.onTelemetry(m)
	case *viewStates:
		v.onStates(m)
	case *viewDesired:
		v.onDesired(m)
	case *viewNode:
		v.nodes[m.status.ID] = m.status
	case *listMiners:
		v.onList(ctx, m)
	case *getMiner:
		v.onGet(ctx, m)
	case *listNodes:
		v.onNodes(ctx)
	default:
		v.log.Warn("fleet view: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (v *FleetView) row(id, node string) *viewRow {
	r, ok := v.rows[id]
	if !ok {
		r = &viewRow{id: id, node: node}
		v.rows[id] = r
		v.ids = append(v.ids, id)
		v.sorted = false
	}
	if node != "" {
		r.node = node
	}
	return r
}

func (v *FleetView) onSeed(m *viewSeed) {
	v.onDevices(&viewDevices{devices: m.devices})
	for _, t := range m.telemetry {
		r, ok := v.rows[t.GetMinerId()]
		if !ok {
			continue
		}
		v.applySample(r, t, time.UnixMilli(t.GetObservedAtUnixMs()))
		r.reindex()
	}
}

func (v *FleetView) onDevices(m *viewDevices) {
	for _, d := range m.devices {
		r := v.row(d.GetMinerId(), d.GetNodeId())
		r.device = d
		r.reindex()
	}
}

func (v *FleetView) onTelemetry(m *viewTelemetry) {
	for _, s := range m.samples {
		r := v.row(s.GetMinerId(), "")
		prev := r.tel
		v.applySample(r, s, m.receivedAt)
		if r.haystack == "" || searchTextChanged(prev, s) {
			r.reindex()
		}
	}
}

func (v *FleetView) applySample(r *viewRow, s *pb.Telemetry, receivedAt time.Time) {
	r.tel = s
	r.lastSeen = lastSeenOf(s, receivedAt)
	if s.GetObservedAtUnixMs() >= r.stateAtMs {
		r.state, r.stateAtMs = s.GetState(), s.GetObservedAtUnixMs()
	}
}

func (v *FleetView) onStates(m *viewStates) {
	for _, c := range m.changes {
		if r, ok := v.rows[c.miner]; ok && c.at.UnixMilli() >= r.stateAtMs {
			r.state, r.stateAtMs = c.state, c.at.UnixMilli()
		}
	}
}

func (v *FleetView) onDesired(m *viewDesired) {
	if r, ok := v.rows[m.miner]; ok {
		r.desired = m.desired
	}
}

func (v *FleetView) connected(node string) bool { return v.nodes[node].Connected }

func (v *FleetView) onList(ctx actor.Context, m *listMiners) {
	if !v.sorted {
		slices.Sort(v.ids)
		v.sorted = true
	}
	ctx.Respond(buildPage(v.rows, v.ids, v.connected, m.q, v.clk.Now(), v.staleAfter))
}

func (v *FleetView) onGet(ctx actor.Context, m *getMiner) {
	r, ok := v.rows[m.id]
	if !ok {
		ctx.Respond(fmt.Errorf("miner %q: %w", m.id, ErrUnknownMiner))
		return
	}
	now := v.clk.Now()
	ctx.Respond(r.row(isStale(r.lastSeen, v.connected(r.node), now, v.staleAfter)))
}

func (v *FleetView) onNodes(ctx actor.Context) {
	out := make([]NodeStatus, 0, len(v.nodes))
	for _, n := range v.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	ctx.Respond(NodesPage{Nodes: out, AsOf: v.clk.Now()})
}
