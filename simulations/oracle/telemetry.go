package oracle

import (
	"fmt"
	"sort"
	"time"
)

// SampleKey identifies one telemetry sample: the node that sent it, the miner, and the instant it was
// observed (Telemetry.observed_at_unix_ms). Use one convention for NodeID on both sides of a check; leave it
// "" on both when the cloud's store does not record which node of a pair sent a sample.
type SampleKey struct {
	NodeID   string
	MinerID  string
	AtUnixMs int64
}

// maxExamples bounds the missing instants listed in one violation.
const maxExamples = 5

// NoLostTelemetry checks invariant 4: every key in acked is in stored. acked holds the samples of every
// batch the cloud acknowledged, and, for the restart check, of every batch the spool's Append accepted
// before the node was killed (minus what the spool reported it downsampled or dropped under its bound,
// which it counts in its metrics). stored is what the cloud's store holds at the end. Missing samples are
// reported once per (node, miner) with their count, the first and last missing instants and a few
// examples.
func NoLostTelemetry(acked, stored []SampleKey) Violations {
	have := make(map[SampleKey]struct{}, len(stored))
	for _, k := range stored {
		have[k] = struct{}{}
	}
	type group struct{ node, miner string }
	missing := map[group][]int64{}
	var order []group
	seen := map[SampleKey]bool{}
	for _, k := range acked {
		if _, ok := have[k]; ok || seen[k] {
			continue
		}
		seen[k] = true
		g := group{k.NodeID, k.MinerID}
		if _, ok := missing[g]; !ok {
			order = append(order, g)
		}
		missing[g] = append(missing[g], k.AtUnixMs)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].node != order[j].node {
			return order[i].node < order[j].node
		}
		return order[i].miner < order[j].miner
	})
	var out Violations
	for _, g := range order {
		ms := missing[g]
		sort.Slice(ms, func(i, j int) bool { return ms[i] < ms[j] })
		firstAt, lastAt := time.UnixMilli(ms[0]), time.UnixMilli(ms[len(ms)-1])
		ex := ms[:min(len(ms), maxExamples)]
		v := Violation{Invariant: InvNoLostTelemetry, Kind: KindLostSample, MinerID: g.miner, Count: len(ms),
			Times:  []time.Time{firstAt, lastAt},
			Detail: fmt.Sprintf("%d acknowledged sample(s) from node %q missing from the store, observed %s–%s (unix ms %v)", len(ms), g.node, stamp(firstAt), stamp(lastAt), ex)}
		if g.node != "" {
			v.Nodes = []string{g.node}
		}
		out = append(out, v)
	}
	return out
}
