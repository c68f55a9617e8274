package oracle

import (
	"fmt"
	"sort"
	"time"
)

// AttemptKind is how an attempt is forbidden.
type AttemptKind string

const (
	// AttemptForged: a bad signature, or signed by a key the node never trusted.
	AttemptForged AttemptKind = "forged"
	// AttemptReplayed: a command the node already received, sent again verbatim (same id, seq, signature).
	// Its original delivery may have executed once; any further execution is forbidden.
	AttemptReplayed AttemptKind = "replayed"
	// AttemptOutOfOrder: a correctly signed command whose seq is at or below the node's high-water mark.
	AttemptOutOfOrder AttemptKind = "out-of-order"
	// AttemptRevokedKey: signed by a key the org revoked (or retired) before it was sent.
	AttemptRevokedKey AttemptKind = "revoked-key"
	// AttemptStaleEpoch: carries a lease epoch other than the node's current one.
	AttemptStaleEpoch AttemptKind = "stale-epoch"
	// AttemptWrongNode: addressed (and signed) for another node.
	AttemptWrongNode AttemptKind = "wrong-node"
)

// Attempt is a command the harness sent that no node may execute (beyond the original execution of a
// replayed one). CommandID is the id the command carries, so executions can be matched to it.
type Attempt struct {
	CommandID string
	Kind      AttemptKind
	// NodeID is the node it was delivered to.
	NodeID string
	Seq    uint64
	KeyID  string
	Epoch  uint64
	// At is when the harness delivered it.
	At time.Time
	// Detail is for the report ("signature flipped in byte 3").
	Detail string
}

func (a Attempt) describe() string {
	s := fmt.Sprintf("%s attempt delivered to %s at %s (seq %d, key %q, epoch %d)", a.Kind, a.NodeID, stamp(a.At), a.Seq, a.KeyID, a.Epoch)
	if a.Detail != "" {
		s += ": " + a.Detail
	}
	return s
}

// NoForbiddenExecution checks invariant 3: no execution of an attempt's command id, except, for a replayed
// command, one execution per miner (the original delivery's). Executions are matched by command id on
// every node and miner: a forged command must not run anywhere. One violation per (attempt, miner).
func NoForbiddenExecution(attempts []Attempt, executed []Executed) Violations {
	var out Violations
	byCmd := map[string]map[string][]Executed{} // command → miner → executions
	for _, e := range executed {
		m := byCmd[e.CommandID]
		if m == nil {
			m = map[string][]Executed{}
			byCmd[e.CommandID] = m
		}
		m[e.MinerID] = append(m[e.MinerID], e)
	}
	as := append([]Attempt(nil), attempts...)
	sort.SliceStable(as, func(i, j int) bool { return as[i].At.Before(as[j].At) })
	type seenKey struct {
		cmd  string
		kind AttemptKind
	}
	seen := map[seenKey]bool{}
	for _, a := range as {
		k := seenKey{a.CommandID, a.Kind}
		if seen[k] {
			continue // the same attempt delivered twice adds no evidence
		}
		seen[k] = true
		miners := byCmd[a.CommandID]
		for _, miner := range sortedKeys(miners) {
			es := miners[miner]
			sort.SliceStable(es, func(i, j int) bool { return es[i].At.Before(es[j].At) })
			bad := es
			if a.Kind == AttemptReplayed {
				bad = es[1:] // the first is the original delivery's
			}
			if len(bad) == 0 {
				continue
			}
			v := execViolation(InvNoForbidden, KindForbidden, bad,
				fmt.Sprintf("%s; executed %d time(s) too many: %s", a.describe(), len(bad), describeExecs(bad)))
			if a.Kind == AttemptReplayed {
				v.Detail += fmt.Sprintf(" (original execution by %s at %s allowed)", es[0].Node, stamp(es[0].At))
			}
			v.Times = append([]time.Time{a.At}, v.Times...)
			out = append(out, v)
		}
	}
	return out
}
