package schedule

import (
	"fmt"
	"time"
)

// Kind is a kind of fault.
type Kind string

const (
	// KillNode stops a node (Graceful: a clean stop that releases its lease; otherwise abrupt, kill -9 or
	// an in-process stop with no goodbye) and restarts it at the fault's end.
	KillNode Kind = "kill-node"
	// KillCloud stops the cloud (Graceful or abrupt) and restarts it at the fault's end.
	KillCloud Kind = "kill-cloud"
	// WANNode cuts one node from the cloud (Proxy Partition) but not from its LAN.
	WANNode Kind = "wan-partition-node"
	// WANSite cuts every node of a site from the cloud.
	WANSite Kind = "wan-partition-site"
	// LANPair cuts the two nodes of a pair from each other (gossip), each keeping its WAN.
	LANPair Kind = "lan-partition-pair"
	// Asymmetric stalls one direction between a node and the cloud: Direction "up" (node → cloud lost) or
	// "down" (cloud → node lost).
	Asymmetric Kind = "asymmetric-partition"
	// GatewayDelay delays a node's gateway traffic by Delay ± Jitter.
	GatewayDelay Kind = "gateway-delay"
	// GatewayLoss fails a node's gateway streams: each message drops its stream with Probability.
	GatewayLoss Kind = "gateway-loss"
	// GatewayDup duplicates a node's gateway messages with Probability.
	GatewayDup Kind = "gateway-dup"
	// GatewayReorder reorders a node's gateway messages with Probability.
	GatewayReorder Kind = "gateway-reorder"
	// ClockSkew steps a node's clock by Offset and makes it drift by DriftPPM.
	ClockSkew Kind = "clock-skew"
	// DiskFull fills a node's disk (spool and store writes fail with ENOSPC).
	DiskFull Kind = "disk-full"
	// MinerHang makes one miner carry out writes and never answer them.
	MinerHang Kind = "miner-hang"
	// TransferLease asks the cloud to hand a pair's lease to the standby (the graceful path of an upgrade)
	// at the fault's start; nothing is healed at its end.
	TransferLease Kind = "transfer-lease"
)

// Kinds returns every kind in the canonical order (the order weights are drawn in).
func Kinds() []Kind {
	return []Kind{KillNode, KillCloud, WANNode, WANSite, LANPair, Asymmetric, GatewayDelay, GatewayLoss,
		GatewayDup, GatewayReorder, ClockSkew, DiskFull, MinerHang, TransferLease}
}

func (k Kind) valid() bool {
	for _, x := range Kinds() {
		if x == k {
			return true
		}
	}
	return false
}

// targetsNode: the fault acts on one node.
func (k Kind) targetsNode() bool {
	switch k {
	case KillNode, WANNode, Asymmetric, GatewayDelay, GatewayLoss, GatewayDup, GatewayReorder, ClockSkew, DiskFull:
		return true
	}
	return false
}

// Role is a node's role in a warm-standby pair, resolved by the harness when the fault fires.
type Role string

const (
	// RoleActive is the lease holder at the moment the fault fires.
	RoleActive Role = "active"
	// RoleStandby is the other member of the pair.
	RoleStandby Role = "standby"
)

// Target is what a fault acts on. The cloud (KillCloud) has no target fields.
type Target struct {
	Site string `json:"site,omitempty"`
	// Node is the node, at a site with one node.
	Node string `json:"node,omitempty"`
	// Role picks the node of a pair when the fault fires.
	Role  Role   `json:"role,omitempty"`
	Miner string `json:"miner,omitempty"`
}

func (t Target) String() string {
	switch {
	case t.Site == "" && t.Node == "" && t.Role == "" && t.Miner == "":
		return "cloud"
	case t.Miner != "":
		return t.Site + "/miner " + t.Miner
	case t.Node != "":
		return t.Site + "/" + t.Node
	case t.Role != "":
		return t.Site + "/" + string(t.Role)
	}
	return t.Site
}

// Fault is one fault of a schedule. Only the parameters of its Kind are set.
type Fault struct {
	// Index is its position in the schedule, from 1.
	Index int `json:"index"`
	// At is when it starts, from the trial's start; it is healed (the node or cloud restarted) at End.
	At       time.Duration `json:"at"`
	Duration time.Duration `json:"duration"`
	Kind     Kind          `json:"kind"`
	Target   Target        `json:"target"`

	// Graceful: KillNode, KillCloud.
	Graceful bool `json:"graceful,omitempty"`
	// Direction: Asymmetric, "up" or "down".
	Direction string `json:"direction,omitempty"`
	// Delay, Jitter: GatewayDelay.
	Delay  time.Duration `json:"delay,omitempty"`
	Jitter time.Duration `json:"jitter,omitempty"`
	// Probability: GatewayLoss, GatewayDup, GatewayReorder.
	Probability float64 `json:"probability,omitempty"`
	// Offset, DriftPPM: ClockSkew.
	Offset   time.Duration `json:"offset,omitempty"`
	DriftPPM float64       `json:"drift_ppm,omitempty"`
}

// End is when the fault is healed.
func (f Fault) End() time.Duration { return f.At + f.Duration }

// Params is the kind's parameters as text ("abrupt", "delay=120ms±30ms").
func (f Fault) Params() string {
	switch f.Kind {
	case KillNode, KillCloud:
		if f.Graceful {
			return "graceful"
		}
		return "abrupt"
	case Asymmetric:
		return "lost=" + f.Direction
	case GatewayDelay:
		return fmt.Sprintf("delay=%s±%s", f.Delay, f.Jitter)
	case GatewayLoss, GatewayDup, GatewayReorder:
		return fmt.Sprintf("p=%.3f", f.Probability)
	case ClockSkew:
		return fmt.Sprintf("offset=%s drift=%+.0fppm", f.Offset, f.DriftPPM)
	}
	return ""
}

func (f Fault) String() string {
	s := fmt.Sprintf("#%d %s–%s %s %s", f.Index, offset(f.At), offset(f.End()), f.Kind, f.Target)
	if p := f.Params(); p != "" {
		s += " " + p
	}
	return s
}

// offset prints a trial offset to the millisecond: "+12.345s".
func offset(d time.Duration) string {
	return fmt.Sprintf("+%.3fs", d.Seconds())
}

// conflicts: two faults that must not be active together (one site, or the cloud twice).
func (f Fault) conflicts(g Fault) bool {
	if f.Kind == KillCloud || g.Kind == KillCloud {
		return f.Kind == g.Kind
	}
	return f.Target.Site == g.Target.Site
}
