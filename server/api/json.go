package api

import (
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/server/grains"
)

// The API's JSON shapes. Field names are snake_case throughout; times are RFC 3339 UTC strings, null when
// unknown; ages are seconds. openapi.json documents exactly these.

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type desiredJSON struct {
	Run          string     `json:"run"`
	Curtailment  string     `json:"curtailment"`
	PowerTargetW float64    `json:"power_target_w"`
	UpdatedAt    *time.Time `json:"updated_at"`
}

type minerJSON struct {
	ID            string      `json:"id"`
	Node          string      `json:"node"`
	State         string      `json:"state"`
	Stale         bool        `json:"stale"`
	LastSeen      *time.Time  `json:"last_seen"`
	LastSeenAgeS  *float64    `json:"last_seen_age_s"`
	HashrateThs   float64     `json:"hashrate_ths"`
	HashrateAvg   float64     `json:"hashrate_avg_ths"`
	TempMaxC      float64     `json:"temp_max_c"`
	ChipTempMaxC  float64     `json:"chip_temp_max_c"`
	BoardTempsC   []float64   `json:"board_temps_c"`
	FansRPM       []int32     `json:"fans_rpm"`
	PowerW        float64     `json:"power_w"`
	PowerTargetW  float64     `json:"power_target_w"`
	EfficiencyJth float64     `json:"efficiency_jth"`
	Pool          string      `json:"pool"`
	PoolUser      string      `json:"pool_user"`
	Model         string      `json:"model"`
	Site          string      `json:"site,omitempty"`
	Firmware      string      `json:"firmware"`
	Address       string      `json:"address"`
	UptimeS       int64       `json:"uptime_s"`
	Error         string      `json:"error"`
	Desired       desiredJSON `json:"desired"`
}

type boardJSON struct {
	Index       int32   `json:"index"`
	TempC       float64 `json:"temp_c"`
	ChipTempC   float64 `json:"chip_temp_c"`
	HashrateThs float64 `json:"hashrate_ths"`
	Chips       int32   `json:"chips"`
}

type poolJSON struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Priority int32  `json:"priority"`
	Status   string `json:"status"`
	Accepted int64  `json:"accepted"`
	Rejected int64  `json:"rejected"`
	Active   bool   `json:"active"`
}

type minerDetailJSON struct {
	minerJSON
	Serial     string      `json:"serial"`
	MAC        string      `json:"mac"`
	Protocol   string      `json:"protocol"`
	WorkMode   string      `json:"work_mode"`
	ObservedAt *time.Time  `json:"observed_at"`
	Boards     []boardJSON `json:"boards"`
	Pools      []poolJSON  `json:"pools"`
	Errors     []string    `json:"errors"`
}

type minerListJSON struct {
	Total  int            `json:"total"`
	Offset int            `json:"offset"`
	Limit  int            `json:"limit"`
	AsOf   time.Time      `json:"as_of"`
	Counts map[string]int `json:"counts"`
	Items  []minerJSON    `json:"items"`
	// Facets (with facets=1): the models, nodes and sites the list can be filtered by.
	Facets *facetsJSON `json:"facets,omitempty"`
}

type commandRequestJSON struct {
	MinerIDs       []string          `json:"miner_ids"`
	Action         string            `json:"action"`
	PowerTargetW   float64           `json:"power_target_w"`
	Pools          []poolRequestJSON `json:"pools"`
	IdempotencyKey string            `json:"idempotency_key"`
	// Firmware names firmware_update's image by the sha256 POST /api/v1/artifacts returned.
	Firmware *firmwareRequestJSON `json:"firmware,omitempty"`
	// Password is update_password's new miner login; sealed to the owning nodes at once, never stored.
	Password string `json:"password,omitempty"`
	// CoolingMode and FanPWM are set_cooling's: auto, manual (fan_pwm 1..100) or immersion.
	CoolingMode string `json:"cooling_mode,omitempty"`
	FanPWM      int    `json:"fan_pwm,omitempty"`
}

// poolRequestJSON is one pool of update_pools. The password is the pool's worker password (usually "x"),
// kept with the command record.
type poolRequestJSON struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
	Priority int32  `json:"priority"`
}

type commandAcceptedJSON struct {
	CommandID string `json:"command_id"`
	Existing  bool   `json:"existing"`
}

// MinerResultJSON is one miner's part of a command as the API shows it (also the cluster API's).
type MinerResultJSON struct {
	MinerID    string     `json:"miner_id"`
	Status     string     `json:"status"`
	Code       string     `json:"code"`
	Message    string     `json:"message"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

// CommandJSON is an operator command as GET /api/v1/commands/{id} shows it (also the cluster API's, which adds
// its org and deadline).
type CommandJSON struct {
	CommandID      string            `json:"command_id"`
	Action         string            `json:"action"`
	PowerTargetW   float64           `json:"power_target_w"`
	Actor          string            `json:"actor"`
	IdempotencyKey string            `json:"idempotency_key"`
	Status         string            `json:"status"`
	CreatedAt      *time.Time        `json:"created_at"`
	FinishedAt     *time.Time        `json:"finished_at"`
	Summary        map[string]int    `json:"summary"`
	NodeSeqs       map[string]uint64 `json:"node_seqs"`
	// Miners is how many miners the command names (results may hold one page of them, or none).
	Miners int `json:"miners"`
	// Results is absent with ?summary=1 (omitzero keeps an empty page as []).
	Results          []MinerResultJSON `json:"results,omitzero"`
	NextResultsAfter string            `json:"next_results_after,omitempty"`
}

type nodeJSON struct {
	Node              string     `json:"node"`
	Connected         bool       `json:"connected"`
	ConnectedSince    *time.Time `json:"connected_since"`
	LastHeartbeat     *time.Time `json:"last_heartbeat"`
	LastHeartbeatAgeS *float64   `json:"last_heartbeat_age_s"`
	SoftwareVersion   string     `json:"software_version"`
	Standby           bool       `json:"standby"`
	LeaseEpoch        uint64     `json:"lease_epoch"`
	NodeLastSeq       uint64     `json:"node_last_seq"`
	LastSeq           uint64     `json:"last_seq"`
	QueuedCommands    int        `json:"queued_commands"`
	Devices           int        `json:"devices"`
	// Process is the node's latest forwarded process snapshot (node --forward-metrics); null when none.
	Process *nodeProcessJSON `json:"process"`
}

// nodeProcessJSON is a node's own process as it last forwarded it.
type nodeProcessJSON struct {
	At                  *time.Time        `json:"at"`
	ReceivedAt          *time.Time        `json:"received_at"`
	AgeS                *float64          `json:"age_s"`
	CPUSeconds          float64           `json:"cpu_seconds"`
	ResidentMemoryBytes uint64            `json:"resident_memory_bytes"`
	Goroutines          uint32            `json:"goroutines"`
	OpenFDs             uint32            `json:"open_fds"`
	GCPauseP99Seconds   float64           `json:"gc_pause_p99_seconds"`
	MinersByState       map[string]uint32 `json:"miners_by_state"`
	SpoolItems          uint64            `json:"spool_items"`
	SpoolBytes          uint64            `json:"spool_bytes"`
	UptimeS             float64           `json:"uptime_s"`
	SoftwareVersion     string            `json:"software_version"`
}

type nodeListJSON struct {
	AsOf  time.Time  `json:"as_of"`
	Nodes []nodeJSON `json:"nodes"`
}

func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func tsMs(ms int64) *time.Time {
	if ms <= 0 {
		return nil
	}
	return ts(time.UnixMilli(ms))
}

func age(t, now time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	a := math.Round(now.Sub(t).Seconds()*10) / 10
	return &a
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func toMiner(r grains.MinerRow, now time.Time) minerJSON {
	t, d := r.Telemetry, r.Device
	m := minerJSON{ID: r.ID, Node: r.Node, State: grains.StateName(r.State), Stale: r.Stale,
		LastSeen: ts(r.LastSeen), LastSeenAgeS: age(r.LastSeen, now),
		HashrateThs: t.GetHashrate_5SThs(), HashrateAvg: t.GetHashrateAvgThs(), FansRPM: orEmpty(t.GetFansRpm()),
		PowerW: t.GetPowerW(), PowerTargetW: t.GetPowerTargetW(), EfficiencyJth: t.GetEfficiencyJth(),
		Model: first(t.GetModel(), d.GetModel()), Site: d.GetSite(), Firmware: t.GetFirmware(), Address: d.GetAddress(),
		UptimeS: t.GetUptimeS(), Error: t.GetPollError(), BoardTempsC: []float64{},
		Desired: desiredJSON{Run: r.Desired.Run, Curtailment: r.Desired.Curtailment,
			PowerTargetW: r.Desired.PowerTargetW, UpdatedAt: ts(r.Desired.UpdatedAt)}}
	if m.Error == "" && len(t.GetErrors()) > 0 {
		m.Error = t.GetErrors()[0]
	}
	for _, b := range t.GetBoards() {
		m.BoardTempsC = append(m.BoardTempsC, b.GetTempC())
		m.TempMaxC = max(m.TempMaxC, b.GetTempC())
		m.ChipTempMaxC = max(m.ChipTempMaxC, b.GetChipTempC())
	}
	if p := activePool(t.GetPools()); p != nil {
		m.Pool, m.PoolUser = p.GetUrl(), p.GetUser()
	}
	return m
}

func toMinerDetail(r grains.MinerRow, now time.Time) minerDetailJSON {
	t, d := r.Telemetry, r.Device
	out := minerDetailJSON{minerJSON: toMiner(r, now), Serial: first(t.GetSerial(), d.GetSerial()),
		MAC: first(t.GetMac(), d.GetMac()), Protocol: protocolName(d.GetProtocol()), WorkMode: t.GetWorkMode(),
		ObservedAt: tsMs(t.GetObservedAtUnixMs()), Boards: []boardJSON{}, Pools: []poolJSON{}, Errors: orEmpty(slices.Clone(t.GetErrors()))}
	for _, b := range t.GetBoards() {
		out.Boards = append(out.Boards, boardJSON{Index: b.GetIndex(), TempC: b.GetTempC(), ChipTempC: b.GetChipTempC(),
			HashrateThs: b.GetHashrateThs(), Chips: b.GetChips()})
	}
	for _, p := range t.GetPools() { // the password never leaves the server
		out.Pools = append(out.Pools, poolJSON{URL: p.GetUrl(), User: p.GetUser(), Priority: p.GetPriority(),
			Status: p.GetStatus(), Accepted: p.GetAccepted(), Rejected: p.GetRejected(), Active: p.GetActive()})
	}
	return out
}

func activePool(ps []*pb.Pool) *pb.Pool {
	for _, p := range ps {
		if p.GetActive() {
			return p
		}
	}
	if len(ps) > 0 {
		return ps[0]
	}
	return nil
}

func protocolName(p pb.Protocol) string {
	switch p {
	case pb.Protocol_PROTOCOL_CGMINER:
		return "cgminer"
	case pb.Protocol_PROTOCOL_ANTMINER:
		return "antminer"
	case pb.Protocol_PROTOCOL_PROTO:
		return "proto"
	case pb.Protocol_PROTOCOL_WHATSMINER:
		return "whatsminer"
	case pb.Protocol_PROTOCOL_BRAIINS:
		return "braiins"
	}
	return ""
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// CommandToJSON renders a command record with every miner's result and the counts by status.
func CommandToJSON(rec *pb.CommandRecord) CommandJSON {
	out := CommandJSON{CommandID: rec.GetCommandId(), Action: grains.ActionName(rec.GetSpec().GetAction()),
		PowerTargetW: rec.GetSpec().GetPowerTargetW(), Actor: rec.GetActor(), IdempotencyKey: rec.GetIdempotencyKey(),
		Status: grains.ResultName(rec.GetStatus()), CreatedAt: tsMs(rec.GetCreatedAtUnixMs()),
		FinishedAt: tsMs(rec.GetFinishedAtUnixMs()), NodeSeqs: rec.GetNodeSeqs(),
		Summary: map[string]int{"pending": 0, "running": 0, "succeeded": 0, "failed": 0, "timeout": 0},
		Results: make([]MinerResultJSON, 0, len(rec.GetMinerIds()))}
	if out.NodeSeqs == nil {
		out.NodeSeqs = map[string]uint64{}
	}
	out.Miners = len(rec.GetMinerIds())
	for _, id := range rec.GetMinerIds() {
		r := MinerResultToJSON(id, rec.GetResults()[id])
		out.Summary[r.Status]++
		out.Results = append(out.Results, r)
	}
	return out
}

// MinerResultToJSON renders one miner's result (a nil result is pending).
func MinerResultToJSON(id string, r *pb.MinerResult) MinerResultJSON {
	return MinerResultJSON{MinerID: id, Status: grains.ResultName(r.GetCode()), Code: grains.ResultCodeName(r.GetCode()),
		Message: r.GetMessage(), StartedAt: tsMs(r.GetStartedAtUnixMs()), FinishedAt: tsMs(r.GetFinishedAtUnixMs())}
}

func toNode(n grains.NodeStatus, now time.Time) nodeJSON {
	return nodeJSON{Node: n.ID, Connected: n.Connected, ConnectedSince: ts(n.ConnectedSince),
		LastHeartbeat: ts(n.LastHeartbeat), LastHeartbeatAgeS: age(n.LastHeartbeat, now),
		SoftwareVersion: n.SoftwareVersion, Standby: n.Standby, LeaseEpoch: n.LeaseEpoch, NodeLastSeq: n.NodeLastSeq,
		LastSeq: n.LastSeq, QueuedCommands: n.QueuedCommands, Devices: n.Devices, Process: toNodeProcess(n, now)}
}

func toNodeProcess(n grains.NodeStatus, now time.Time) *nodeProcessJSON {
	p := n.Process
	if p == nil {
		return nil
	}
	byState := map[string]uint32{}
	for s, c := range p.GetMinersByState() {
		byState[s] = c
	}
	return &nodeProcessJSON{At: tsMs(p.GetAtUnixMs()), ReceivedAt: ts(n.ProcessReceivedAt), AgeS: age(n.ProcessReceivedAt, now),
		CPUSeconds: p.GetCpuSeconds(), ResidentMemoryBytes: p.GetResidentMemoryBytes(), Goroutines: p.GetGoroutines(),
		OpenFDs: p.GetOpenFds(), GCPauseP99Seconds: p.GetGcPauseP99Seconds(), MinersByState: byState,
		SpoolItems: p.GetSpoolItems(), SpoolBytes: p.GetSpoolBytes(), UptimeS: p.GetUptimeSeconds(),
		SoftwareVersion: p.GetSoftwareVersion()}
}
