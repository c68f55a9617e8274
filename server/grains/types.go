package grains

import (
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// CommandRequest is an operator's command as the API hands it to the org.
type CommandRequest struct {
	MinerIDs     []string
	Action       pb.Action
	PowerTargetW float64
	// Pools are update_pools' pools, 1 to 3, tried in priority order (lowest first).
	Pools []*pb.Pool
	// Firmware is firmware_update's image: an artifact in the cloud's store (server/artifacts).
	Firmware *pb.ArtifactRef
	// NewPassword is update_password's new miner login (plaintext, sealed at issue; never stored).
	NewPassword []byte
	// CoolingMode and FanPWM are set_cooling's: auto, manual (FanPWM 1..100) or immersion.
	CoolingMode    string
	FanPWM         int
	IdempotencyKey string
	// Actor is who issued it ("user:admin").
	Actor string
}

// IssuedCommand answers a CommandRequest.
type IssuedCommand struct {
	CommandID string
	// Existing is true when the idempotency key named a command issued before; nothing new was issued.
	Existing bool
}

// IngestResult answers an ingested telemetry or event batch. The batch is applied (or was a duplicate)
// once it is returned, so the gateway may ack it.
type IngestResult struct {
	Duplicate bool
	Applied   int // samples or events applied
	Rejected  int // samples or events refused (unowned, invalid, older than what is known)
}

// Desired is the operator's intent for a miner, as far as commands have set it. Reconciliation against
// observed state comes later; for now it is shown next to telemetry.
type Desired struct {
	// Run is "", "running" or "stopped": the last start or stop asked.
	Run string
	// Curtailment is "", "curtailed" or "uncurtailed".
	Curtailment string
	// PowerTargetW is the last power target asked, 0 when never set.
	PowerTargetW float64
	UpdatedAt    time.Time
}

// MinerRow is one miner in the fleet read model. Telemetry and Device are shared, read-only snapshots.
type MinerRow struct {
	ID    string
	Node  string
	State pb.MinerState
	// Stale: the node's control stream is down, or the latest sample is older than StaleAfter.
	Stale bool
	// LastSeen is when the latest sample was observed (zero: never).
	LastSeen  time.Time
	Telemetry *pb.Telemetry
	Device    *pb.Device
	Desired   Desired
}

// MinerQuery selects a page of miners, ordered by id.
type MinerQuery struct {
	// States keeps miners in any of these states (empty: all).
	States []pb.MinerState
	// Stale keeps only stale miners when true.
	Stale bool
	// Search keeps miners whose id, node, model, address, serial, MAC, firmware or pool URL contains it
	// (case-insensitive).
	Search string
	Offset int
	// Limit caps the page; 0 means DefaultPageLimit, values above MaxPageLimit are capped.
	Limit int
}

// Page bounds of MinerQuery.
const (
	DefaultPageLimit = 500
	MaxPageLimit     = 100_000
)

// MinerPage answers a MinerQuery.
type MinerPage struct {
	// Total is how many miners match, before Offset and Limit.
	Total  int
	Offset int
	Limit  int
	Items  []MinerRow
	// Counts is miners by state name across the whole fleet, plus "stale".
	Counts map[string]int
	// AsOf is the read model's clock at the query; ages are relative to it.
	AsOf time.Time
}

// NodeStatus is one node as the read model knows it.
type NodeStatus struct {
	ID              string
	Connected       bool
	ConnectedSince  time.Time
	LastHeartbeat   time.Time
	SoftwareVersion string
	Standby         bool
	LeaseEpoch      uint64
	// NodeLastSeq is the high-water mark the node reported in its latest hello.
	NodeLastSeq uint64
	// LastSeq is the last seq the cloud allocated to the node.
	LastSeq        uint64
	QueuedCommands int
	Devices        int
	// Process is the node's latest forwarded process snapshot (node --forward-metrics; nil when it does not
	// forward, or since this server started), received at ProcessReceivedAt. Kept in memory only: it is
	// replaced within one forwarding interval. Shared, do not modify.
	Process           *pb.NodeMetrics
	ProcessReceivedAt time.Time
}

// NodesPage answers a nodes query.
type NodesPage struct {
	Nodes []NodeStatus
	AsOf  time.Time
}

// StateName is the API name of a miner state.
func StateName(s pb.MinerState) string {
	switch s {
	case pb.MinerState_MINER_STATE_ONLINE:
		return "online"
	case pb.MinerState_MINER_STATE_UNREACHABLE:
		return "unreachable"
	case pb.MinerState_MINER_STATE_REBOOTING:
		return "rebooting"
	case pb.MinerState_MINER_STATE_MINING:
		return "mining"
	case pb.MinerState_MINER_STATE_STOPPED:
		return "stopped"
	case pb.MinerState_MINER_STATE_CURTAILED:
		return "curtailed"
	}
	return "unknown"
}

// ParseState is the inverse of StateName.
func ParseState(name string) (pb.MinerState, bool) {
	for v := range pb.MinerState_name {
		if s := pb.MinerState(v); StateName(s) == name {
			return s, true
		}
	}
	return 0, false
}

// StateNames lists every state name StateName returns.
func StateNames() []string {
	return []string{"unknown", "online", "mining", "stopped", "curtailed", "rebooting", "unreachable"}
}

// actionNames are the operator actions the API accepts.
var actionNames = map[string]pb.Action{
	"reboot":           pb.Action_ACTION_REBOOT,
	"start":            pb.Action_ACTION_START_MINING,
	"stop":             pb.Action_ACTION_STOP_MINING,
	"set_power_target": pb.Action_ACTION_SET_POWER_TARGET,
	"blink":            pb.Action_ACTION_BLINK,
	"curtail":          pb.Action_ACTION_CURTAIL,
	"uncurtail":        pb.Action_ACTION_UNCURTAIL,
	"update_pools":     pb.Action_ACTION_UPDATE_POOLS,
	"get_pools":        pb.Action_ACTION_GET_POOLS,
	"get_errors":       pb.Action_ACTION_GET_ERRORS,
	"firmware_update":  pb.Action_ACTION_FIRMWARE_UPDATE,
	"firmware_status":  pb.Action_ACTION_FIRMWARE_STATUS,
	"update_password":  pb.Action_ACTION_UPDATE_PASSWORD,
	"get_cooling":      pb.Action_ACTION_GET_COOLING,
	"set_cooling":      pb.Action_ACTION_SET_COOLING,
	"download_logs":    pb.Action_ACTION_DOWNLOAD_LOGS,
}

// ActionNames lists the accepted action names in a stable order.
func ActionNames() []string {
	return []string{"reboot", "start", "stop", "set_power_target", "blink", "curtail", "uncurtail", "update_pools", "get_pools", "get_errors", "firmware_update", "firmware_status", "update_password", "get_cooling", "set_cooling", "download_logs"}
}

// ParseAction maps an API action name to its Action; false for anything else.
func ParseAction(name string) (pb.Action, bool) {
	a, ok := actionNames[name]
	return a, ok
}

// ActionName is the API name of an action ("" when the API does not accept it).
func ActionName(a pb.Action) string {
	for n, v := range actionNames {
		if v == a {
			return n
		}
	}
	return ""
}

// ResultName is the API status of a per-miner or overall result: pending, running, succeeded, failed or
// timeout. Every refusal and error code is "failed"; the code itself is in ResultCodeName.
func ResultName(c pb.ResultCode) string {
	switch c {
	case pb.ResultCode_RESULT_CODE_UNSPECIFIED, pb.ResultCode_RESULT_CODE_PENDING:
		return "pending"
	case pb.ResultCode_RESULT_CODE_RUNNING, pb.ResultCode_RESULT_CODE_DUPLICATE:
		return "running"
	case pb.ResultCode_RESULT_CODE_SUCCEEDED:
		return "succeeded"
	case pb.ResultCode_RESULT_CODE_TIMEOUT:
		return "timeout"
	}
	return "failed"
}

// ResultCodeName is the lower-case code without its prefix ("refused_seq").
func ResultCodeName(c pb.ResultCode) string {
	n, ok := pb.ResultCode_name[int32(c)]
	if !ok {
		return "unknown"
	}
	const prefix = "RESULT_CODE_"
	out := []byte(n[len(prefix):])
	for i, b := range out {
		if b >= 'A' && b <= 'Z' {
			out[i] = b + 'a' - 'A'
		}
	}
	return string(out)
}
