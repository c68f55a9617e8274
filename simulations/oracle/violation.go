package oracle

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Invariant names one of the invariants the simulations check; the numbers are ARCHITECTURE.md's.
type Invariant string

const (
	// InvSingleWriter (1): at most one node writes to any miner at any instant; epochs never go back.
	InvSingleWriter Invariant = "single-writer"
	// InvExactlyOnce (2): no command executes twice on a miner; none acknowledged to the operator is lost.
	InvExactlyOnce Invariant = "exactly-once"
	// InvNoForbidden (3): no forged, replayed, out-of-order, revoked-key or stale-epoch command executes.
	InvNoForbidden Invariant = "no-forbidden-execution"
	// InvNoLostTelemetry (4): telemetry the cloud acknowledged (or the spool took) is never lost.
	InvNoLostTelemetry Invariant = "no-lost-telemetry"
	// InvRecovery (5): the standby is in control within the target after the active fails; after the WAN
	// heals every local action is in the cloud's audit log.
	InvRecovery Invariant = "recovery"
)

// Kind is what exactly went wrong.
type Kind string

const (
	// KindOverlap: two writers' tenures on one miner interleave.
	KindOverlap Kind = "overlapping-writers"
	// KindEpochRegression: a write carries a lower epoch than one the miner received before it.
	KindEpochRegression Kind = "epoch-regression"
	// KindEpochShared: two writers wrote to one miner under the same non-zero epoch.
	KindEpochShared Kind = "epoch-shared"
	// KindDuplicate: a command executed more than once on one miner.
	KindDuplicate Kind = "duplicate-execution"
	// KindLost: a command the operator was told was accepted or succeeded never executed (and, when only
	// accepted, was never reported failed either).
	KindLost Kind = "lost-command"
	// KindUnissued: a command executed that the operator never issued.
	KindUnissued Kind = "executed-not-issued"
	// KindWrongMiner: a command executed on a miner it does not name.
	KindWrongMiner Kind = "executed-on-unnamed-miner"
	// KindUnknownAck: the operator API acknowledged a command id that was never issued.
	KindUnknownAck Kind = "acked-not-issued"
	// KindForbidden: a forged, replayed, out-of-order, revoked-key, stale-epoch or misaddressed command executed.
	KindForbidden Kind = "forbidden-execution"
	// KindLostSample: acknowledged telemetry is missing from the cloud's store.
	KindLostSample Kind = "lost-telemetry"
	// KindNoFailover: after the holder failed, no other node took control.
	KindNoFailover Kind = "no-failover"
	// KindSlowFailover: the standby took control later than the target.
	KindSlowFailover Kind = "slow-failover"
	// KindUnaudited: a local action never reached the cloud's audit log.
	KindUnaudited Kind = "local-action-not-audited"
)

// Violation is one broken invariant with the evidence for it. Times are in the order Detail names them.
type Violation struct {
	Invariant Invariant   `json:"invariant"`
	Kind      Kind        `json:"kind"`
	MinerID   string      `json:"miner_id,omitempty"`
	CommandID string      `json:"command_id,omitempty"`
	Nodes     []string    `json:"nodes,omitempty"`
	Epochs    []uint64    `json:"epochs,omitempty"`
	Times     []time.Time `json:"times,omitempty"`
	// Count is how many records the violation stands for (writes in a regression run, executions of a
	// duplicated command, missing samples); 0 or 1 means one.
	Count  int    `json:"count,omitempty"`
	Detail string `json:"detail"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s/%s]", v.Invariant, v.Kind)
	if v.MinerID != "" {
		fmt.Fprintf(&b, " miner %s", v.MinerID)
	}
	if v.CommandID != "" {
		fmt.Fprintf(&b, " command %s", v.CommandID)
	}
	b.WriteString(": ")
	b.WriteString(v.Detail)
	return b.String()
}

// Violations is the result of one or more checks.
type Violations []Violation

// Err returns nil when there are none, else an error wrapping ErrViolation that lists up to ten.
func (vs Violations) Err() error {
	if len(vs) == 0 {
		return nil
	}
	const shown = 10
	var b strings.Builder
	for i, v := range vs {
		if i == shown {
			fmt.Fprintf(&b, "\n  … and %d more", len(vs)-shown)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return fmt.Errorf("%w: %d violation(s):%s", ErrViolation, len(vs), b.String())
}

// ByInvariant counts violations per invariant.
func (vs Violations) ByInvariant() map[Invariant]int {
	m := map[Invariant]int{}
	for _, v := range vs {
		m[v.Invariant]++
	}
	return m
}

// Of returns the violations of one invariant.
func (vs Violations) Of(inv Invariant) Violations {
	var out Violations
	for _, v := range vs {
		if v.Invariant == inv {
			out = append(out, v)
		}
	}
	return out
}

// stamp formats an instant for a Detail line: time of day to the millisecond, the date left out.
func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// sortedKeys returns a map's keys in order, so violations come out in a deterministic order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
