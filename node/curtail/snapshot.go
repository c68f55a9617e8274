package curtail

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/miner"
)

// Capabilities are what a miner's driver can do for curtailment.
type Capabilities struct {
	// CanSleep: ACTION_CURTAIL without a power target puts the miner to sleep (Antminer work mode sleep,
	// LuxOS "curtail sleep", Proto rig mining stop), and ACTION_UNCURTAIL wakes it.
	CanSleep bool
	// CanSetPowerTarget: ACTION_CURTAIL with power_target_w limits the miner's draw (Antminer low-power work
	// modes, Proto rig power target), and ACTION_UNCURTAIL restores it.
	CanSetPowerTarget bool
	// MinPowerW and MaxPowerW are the power-target range. A miner is power-limited only when MinPowerW > 0:
	// without a known floor the planner will not guess one.
	MinPowerW, MaxPowerW float64
}

// canLimit reports whether the miner can be power-limited below drawW.
func (c Capabilities) canLimit(drawW float64) bool {
	return c.CanSetPowerTarget && c.MinPowerW > 0 && drawW > c.MinPowerW
}

// DefaultCapabilities are conservative capabilities by protocol, for a node that has no better knowledge:
// every family can sleep (CGMiner-API firmware without a curtail command answers UNSUPPORTED and the planner
// moves on to another miner); power targets are left off because their range is model-specific (set
// CanSetPowerTarget with MinPowerW/MaxPowerW from the model's data to use them).
func DefaultCapabilities(d *pb.Device) Capabilities {
	switch d.GetProtocol() {
	case pb.Protocol_PROTOCOL_CGMINER, pb.Protocol_PROTOCOL_ANTMINER, pb.Protocol_PROTOCOL_PROTO:
		return Capabilities{CanSleep: true}
	}
	return Capabilities{}
}

// MinerSnapshot is what curtailment (and automation) know of one miner at one moment.
type MinerSnapshot struct {
	ID    string
	State pb.MinerState
	// StateSince is when State was entered.
	StateSince time.Time
	// ObservedAt is when the readings below were read (the last good sample); zero if never.
	ObservedAt     time.Time
	PowerW         float64
	HashrateTHs    float64 // the driver's short-window hashrate
	HashrateAvgTHs float64
	EfficiencyJTH  float64
	PowerTargetW   float64
	// MaxTempC is the hottest board or chip temperature.
	MaxTempC float64
	UptimeS  int64
	Caps     Capabilities
	// Tags are the miner's labels, for OrderPriority.
	Tags []string
}

// reachable reports whether the miner answers polls.
func (m MinerSnapshot) reachable() bool {
	switch m.State {
	case pb.MinerState_MINER_STATE_UNREACHABLE, pb.MinerState_MINER_STATE_REBOOTING, pb.MinerState_MINER_STATE_UNSPECIFIED:
		return false
	}
	return true
}

// countedW is the draw the site counts for m: its reading, except an unreachable miner draws nothing as far as
// anyone can tell. A rebooting miner counts its last reading: it is expected back, and counting it as 0 would
// make the planner release or re-plan around every reboot.
func (m MinerSnapshot) countedW() float64 {
	if m.State == pb.MinerState_MINER_STATE_UNREACHABLE || m.State == pb.MinerState_MINER_STATE_UNSPECIFIED {
		return 0
	}
	return m.PowerW
}

// jth is the miner's efficiency for ranking: the reported J/TH, else power over hashrate; a miner drawing power
// without hashing is infinitely inefficient (curtailed first).
func (m MinerSnapshot) jth() float64 {
	switch {
	case m.EfficiencyJTH > 0:
		return m.EfficiencyJTH
	case m.HashrateTHs > 0:
		return m.PowerW / m.HashrateTHs
	case m.HashrateAvgTHs > 0:
		return m.PowerW / m.HashrateAvgTHs
	case m.PowerW > 0:
		return math.Inf(1)
	}
	return 0
}

// SnapshotFromStatus converts a MinerActor's Status. Readings come from the last good sample (so a miner whose
// latest poll failed keeps its last known draw, with ObservedAt saying how old it is).
func SnapshotFromStatus(st miner.Status, caps Capabilities, tags []string) MinerSnapshot {
	s := MinerSnapshot{ID: st.MinerID, State: st.State, StateSince: st.StateSince, Caps: caps, Tags: tags}
	r := st.Sample
	if r == nil || r.GetPollError() != "" {
		r = st.LastGood
	}
	if r == nil {
		return s
	}
	s.ObservedAt = time.UnixMilli(r.GetObservedAtUnixMs())
	s.PowerW = r.GetPowerW()
	s.HashrateTHs = r.GetHashrate_5SThs()
	s.HashrateAvgTHs = r.GetHashrateAvgThs()
	s.EfficiencyJTH = r.GetEfficiencyJth()
	s.PowerTargetW = r.GetPowerTargetW()
	s.UptimeS = r.GetUptimeS()
	for _, b := range r.GetBoards() {
		s.MaxTempC = max(s.MaxTempC, b.GetTempC(), b.GetChipTempC())
	}
	return s
}

// CapabilityFunc gives a device's curtailment capabilities.
type CapabilityFunc func(*pb.Device) Capabilities

// TagFunc gives a device's tags.
type TagFunc func(*pb.Device) []string

// Board is a concurrency-safe Snapshots implementation: the node feeds it MinerActor statuses (from the
// SiteSupervisor's StatusUpdates, or a periodic site.List) and the CurtailActor and AutomationActor read it
// from memory inside Receive.
type Board struct {
	caps CapabilityFunc
	tags TagFunc
	mu   sync.RWMutex
	m    map[string]MinerSnapshot
}

// NewBoard returns an empty board; caps nil means DefaultCapabilities, tags nil means none.
func NewBoard(caps CapabilityFunc, tags TagFunc) *Board {
	if caps == nil {
		caps = DefaultCapabilities
	}
	return &Board{caps: caps, tags: tags, m: map[string]MinerSnapshot{}}
}

func (b *Board) snapshot(st miner.Status) MinerSnapshot {
	var tags []string
	if b.tags != nil {
		tags = b.tags(st.Device)
	}
	return SnapshotFromStatus(st, b.caps(st.Device), tags)
}

// Update records the given statuses.
func (b *Board) Update(sts ...miner.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range sts {
		b.m[st.MinerID] = b.snapshot(st)
	}
}

// Replace records a whole site's list (site.List.Miners): miners not in it are forgotten.
func (b *Board) Replace(sts []miner.Status) {
	m := make(map[string]MinerSnapshot, len(sts))
	for _, st := range sts {
		m[st.MinerID] = b.snapshot(st)
	}
	b.mu.Lock()
	b.m = m
	b.mu.Unlock()
}

// Remove forgets miners.
func (b *Board) Remove(ids ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		delete(b.m, id)
	}
}

// Snapshots implements Snapshots: every miner, sorted by id.
func (b *Board) Snapshots() []MinerSnapshot {
	b.mu.RLock()
	out := make([]MinerSnapshot, 0, len(b.m))
	for _, s := range b.m {
		out = append(out, s)
	}
	b.mu.RUnlock()
	slices.SortFunc(out, func(a, b MinerSnapshot) int { return cmpString(a.ID, b.ID) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
