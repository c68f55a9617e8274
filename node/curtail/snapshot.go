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
//
// A refresh converts only the statuses that changed since the last one (a new sample, state or device: the
// MinerActor replaces them, never edits them), and the sorted snapshot list is kept between reads and copied
// on the first write after a read (copy-on-write), so a read costs nothing and a refresh costs the miners
// polled since.
type Board struct {
	caps CapabilityFunc
	tags TagFunc
	mu   sync.Mutex
	// snaps is every miner's snapshot sorted by id; srcs[i] is what snaps[i] was made from, pos the index
	// of each id.
	snaps []MinerSnapshot
	srcs  []statusKey
	pos   map[string]int
	// shared: snaps has been handed out by Snapshots, so it is copied before the next write.
	shared bool
	// seen and gen mark the positions a Replace named (sameMembers).
	seen []uint32
	gen  uint32
}

// statusKey is what a snapshot is computed from: a status with the same key gives the same snapshot.
type statusKey struct {
	device       *pb.Device
	sample, good *pb.Telemetry
	state        pb.MinerState
	since        time.Time
}

func keyOf(st miner.Status) statusKey {
	return statusKey{device: st.Device, sample: st.Sample, good: st.LastGood, state: st.State, since: st.StateSince}
}

// NewBoard returns an empty board; caps nil means DefaultCapabilities, tags nil means none.
func NewBoard(caps CapabilityFunc, tags TagFunc) *Board {
	if caps == nil {
		caps = DefaultCapabilities
	}
	return &Board{caps: caps, tags: tags, pos: map[string]int{}}
}

func (b *Board) snapshot(st miner.Status) MinerSnapshot {
	var tags []string
	if b.tags != nil {
		tags = b.tags(st.Device)
	}
	return SnapshotFromStatus(st, b.caps(st.Device), tags)
}

// set stores st's snapshot at i unless it is unchanged. Caller holds mu.
func (b *Board) set(i int, st miner.Status) {
	k := keyOf(st)
	if b.srcs[i] == k {
		return
	}
	if b.shared {
		b.snaps = slices.Clone(b.snaps)
		b.shared = false
	}
	b.snaps[i], b.srcs[i] = b.snapshot(st), k
}

// rebuild replaces the whole list with sts (the last status of an id wins), reusing the snapshots of
// unchanged statuses. Caller holds mu.
func (b *Board) rebuild(sts []miner.Status) {
	idx := make(map[string]int, len(sts))
	for i, st := range sts {
		idx[st.MinerID] = i
	}
	order := make([]int, 0, len(idx))
	for i, st := range sts {
		if idx[st.MinerID] == i {
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(x, y int) int { return cmpString(sts[x].MinerID, sts[y].MinerID) })
	snaps := make([]MinerSnapshot, len(order))
	srcs := make([]statusKey, len(order))
	pos := make(map[string]int, len(order))
	for j, i := range order {
		st := sts[i]
		k := keyOf(st)
		if p, ok := b.pos[st.MinerID]; ok && b.srcs[p] == k {
			snaps[j] = b.snaps[p]
		} else {
			snaps[j] = b.snapshot(st)
		}
		srcs[j], pos[st.MinerID] = k, j
	}
	b.snaps, b.srcs, b.pos, b.shared = snaps, srcs, pos, false
}

// Update records the given statuses.
func (b *Board) Update(sts ...miner.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, st := range sts {
		if _, ok := b.pos[st.MinerID]; !ok {
			all := make([]miner.Status, 0, len(b.snaps)+len(sts))
			all = append(all, b.statuses()...)
			b.rebuild(append(all, sts...))
			return
		}
	}
	for _, st := range sts {
		b.set(b.pos[st.MinerID], st)
	}
}

// statuses rebuilds minimal statuses of the current list, for rebuild to keep its snapshots. Caller holds mu.
func (b *Board) statuses() []miner.Status {
	out := make([]miner.Status, len(b.snaps))
	for i, s := range b.snaps {
		k := b.srcs[i]
		out[i] = miner.Status{MinerID: s.ID, Device: k.device, Sample: k.sample, LastGood: k.good, State: k.state, StateSince: k.since}
	}
	return out
}

// Replace records a whole site's list (site.List.Miners): miners not in it are forgotten.
func (b *Board) Replace(sts []miner.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sameMembers(sts) {
		for _, st := range sts {
			b.set(b.pos[st.MinerID], st)
		}
		return
	}
	b.rebuild(sts)
}

// sameMembers reports whether sts names exactly the board's miners, each once. Caller holds mu.
func (b *Board) sameMembers(sts []miner.Status) bool {
	if len(sts) != len(b.snaps) {
		return false
	}
	b.gen++
	if b.gen == 0 || len(b.seen) != len(b.snaps) {
		b.seen, b.gen = make([]uint32, len(b.snaps)), 1
	}
	for _, st := range sts {
		p, ok := b.pos[st.MinerID]
		if !ok || b.seen[p] == b.gen {
			return false
		}
		b.seen[p] = b.gen
	}
	return true
}

// Remove forgets miners.
func (b *Board) Remove(ids ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	gone := false
	for _, id := range ids {
		if _, ok := b.pos[id]; ok {
			gone = true
		}
	}
	if !gone {
		return
	}
	drop := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		drop[id] = struct{}{}
	}
	keep := slices.DeleteFunc(b.statuses(), func(st miner.Status) bool { _, ok := drop[st.MinerID]; return ok })
	b.rebuild(keep)
}

// Snapshots implements Snapshots: every miner, sorted by id. The slice is shared with the board and other
// readers: callers must not modify it (the board copies it before its next change).
func (b *Board) Snapshots() []MinerSnapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shared = true
	return b.snaps[:len(b.snaps):len(b.snaps)]
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
