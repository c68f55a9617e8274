package grains

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashfleet/hashfleet/actors"
	"github.com/hashfleet/hashfleet/actors/clock"
	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/history"
)

// HistorySink keeps telemetry history (*history.History implements it).
type HistorySink interface {
	Append(samples []*pb.Telemetry) (history.AppendResult, error)
	Tick(now time.Time) error
	SetGroups(groups map[string][]string) error
}

// Defaults of the recorder's timing.
const (
	// historyTickInterval: how often silent miners' buckets are closed (History.Tick).
	historyTickInterval = 30 * time.Second
	// historyGroupsDelay coalesces registrations: groups are rewritten at most this often.
	historyGroupsDelay = time.Second
)

// HistoryRecorder writes the org's telemetry into the history, off the Org's mailbox: the Org persists and
// acks a batch, then hands its owned samples here, so a slow history write never delays ingest. It ticks
// the history on the business clock and keeps the site, node and org groups in step with the devices. A
// crash between a batch's ack and its history write loses that batch's history only (the latest samples
// are in the store).
type HistoryRecorder struct {
	sink HistorySink
	clk  clock.Clock
	log  *slog.Logger

	tick    clock.Timer
	groups  map[string][]string // waiting to be written
	pending clock.Timer
}

type historySamples struct{ samples []*pb.Telemetry }
type historyGroups struct{ groups map[string][]string }
type historyTick struct{}
type historyApplyGroups struct{}

func newHistoryRecorder(sink HistorySink, clk clock.Clock, log *slog.Logger) *HistoryRecorder {
	return &HistoryRecorder{sink: sink, clk: clk, log: log}
}

func (h *HistoryRecorder) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.tick = actors.SendAfter(h.clk, ctx.ActorSystem(), ctx.Self(), historyTickInterval, &historyTick{})
	case *actor.Stopping:
		h.onStopping()
	case *actor.Stopped, *actor.Restarting:
	case *historySamples:
		h.onSamples(m)
	case *historyGroups:
		h.onGroups(ctx, m)
	case *historyApplyGroups:
		h.pending = nil
		h.applyGroups()
	case *historyTick:
		h.onTick(ctx)
	default:
		h.log.Warn("history recorder: unexpected message", slog.String("type", fmt.Sprintf("%T", m)))
	}
}

func (h *HistoryRecorder) onSamples(m *historySamples) {
	res, err := h.sink.Append(m.samples)
	if err != nil {
		h.log.Error("history: append", slog.Int("samples", len(m.samples)), slog.Any("err", err))
		return
	}
	if res.Invalid > 0 || res.Late > 0 {
		h.log.Debug("history: samples not rolled up", slog.Int("invalid", res.Invalid), slog.Int("late", res.Late))
	}
}

func (h *HistoryRecorder) onGroups(ctx actor.Context, m *historyGroups) {
	h.groups = m.groups
	if h.pending == nil {
		h.pending = actors.SendAfter(h.clk, ctx.ActorSystem(), ctx.Self(), historyGroupsDelay, &historyApplyGroups{})
	}
}

func (h *HistoryRecorder) applyGroups() {
	if h.groups == nil {
		return
	}
	if err := h.sink.SetGroups(h.groups); err != nil {
		h.log.Error("history: set groups", slog.Int("groups", len(h.groups)), slog.Any("err", err))
		return
	}
	h.groups = nil
}

func (h *HistoryRecorder) onTick(ctx actor.Context) {
	if err := h.sink.Tick(h.clk.Now()); err != nil {
		h.log.Error("history: tick", slog.Any("err", err))
	}
	h.tick = actors.SendAfter(h.clk, ctx.ActorSystem(), ctx.Self(), historyTickInterval, &historyTick{})
}

func (h *HistoryRecorder) onStopping() {
	for _, t := range []clock.Timer{h.tick, h.pending} {
		if t != nil {
			t.Stop()
		}
	}
	h.applyGroups() // the groups registered last survive a restart
}

// historyGroupsOf derives the history groups from the org's devices: one per node ("node:<id>"), one per
// named site ("site:<name>") and the org ("org:<id>"), members sorted.
func historyGroupsOf(org string, devices map[string]*orgDevice) map[string][]string {
	groups := map[string][]string{}
	all := make([]string, 0, len(devices))
	for id, d := range devices {
		all = append(all, id)
		if n := d.device.GetNodeId(); n != "" {
			g := history.ScopeGroup(history.ScopeNode, n)
			groups[g] = append(groups[g], id)
		}
		if s := d.device.GetSite(); s != "" {
			g := history.ScopeGroup(history.ScopeSite, s)
			groups[g] = append(groups[g], id)
		}
	}
	groups[history.ScopeGroup(history.ScopeOrg, org)] = all
	for _, m := range groups {
		slices.Sort(m)
	}
	return groups
}

// spawnHistory starts the org's HistoryRecorder when the fleet keeps history (nil otherwise).
func (o *Org) spawnHistory(ctx actor.Context) *actor.PID {
	if o.cfg.History == nil {
		return nil
	}
	return ctx.Spawn(actors.Props("history-recorder", o.cfg.ActorMetrics, func() actor.Actor {
		return newHistoryRecorder(o.cfg.History, o.cfg.Clock, o.log)
	}))
}

// recordHistory hands a batch's owned samples to the recorder.
func (o *Org) recordHistory(ctx actor.Context, samples []*pb.Telemetry) {
	if o.history != nil && len(samples) > 0 {
		ctx.Send(o.history, &historySamples{samples: samples})
	}
}

// historyGroupsChanged sends the recorder the groups of the current devices.
func (o *Org) historyGroupsChanged(ctx actor.Context) {
	if o.history != nil {
		ctx.Send(o.history, &historyGroups{groups: historyGroupsOf(o.cfg.OrgID, o.devices)})
	}
}
