package oracle

import (
	"fmt"
	"sort"
	"time"
)

// Write is one write a miner logged: every write it received, accepted or refused, since issuing a write
// is what a fenced node must not do.
type Write struct {
	MinerID string
	// At is the miner's clock. A miner's log is ordered by it; writes with equal At keep their input order.
	At time.Time
	// Writer is the node that sent it: the node id, or the remote address when the harness cannot map it
	// (two addresses of one node then count as two writers, which can only add violations).
	Writer string
	// Epoch is the lease epoch the write carried; 0 when it carried none (a node outside a pair).
	Epoch uint64
	// Op names the write ("restart", "POST /cgi-bin/reboot.cgi"). When one command makes several writes of
	// the same kind (CGMiner addpool ×3) include the arguments, so ExecutionsFromWrites can tell a repeat
	// from the next step.
	Op string
	// CommandID is the command the write carried out, when the miner's log can say (a header or request
	// field the driver sends); "" otherwise. Only ExecutionsFromWrites reads it.
	CommandID string
}

// Tenure is one writer's stretch on one miner: every write it made under one epoch, from the first to the
// last.
type Tenure struct {
	MinerID     string
	Writer      string
	Epoch       uint64
	First, Last time.Time
	Writes      int
}

func (t Tenure) String() string {
	return fmt.Sprintf("%s (epoch %d) %s–%s, %d write(s)", t.Writer, t.Epoch, stamp(t.First), stamp(t.Last), t.Writes)
}

// Tenures groups each miner's writes by (writer, epoch), ordered by miner, then by first write.
func Tenures(writes []Write) []Tenure {
	var out []Tenure
	groups := byMiner(writes)
	for _, miner := range sortedKeys(groups) {
		out = append(out, tenuresOf(miner, groups[miner])...)
	}
	return out
}

// NoOverlappingWriters checks invariant 1 on the miners' own write logs. Per miner, with the writes in the
// miner's time order:
//
//   - Tenures never interleave: a tenure is a (writer, epoch) pair's writes from its first to its last, and
//     for any two tenures of different writers one must end strictly before the other begins. A write at the
//     same instant as another writer's counts as overlapping: the log cannot prove which came first.
//   - Epochs never go back: a write whose epoch is below one the miner received earlier is a violation
//     (a write without an epoch, 0, after a tagged one included): the fencing token rose and a stale holder
//     still wrote.
//   - An epoch belongs to one writer: two writers using the same non-zero epoch on one miner means an epoch
//     was issued twice or a node wrote under an epoch it was never granted.
//
// Each overlapping pair of tenures is one violation; regressions and shared epochs are reported once per
// (writer, epoch) with a count.
func NoOverlappingWriters(writes []Write) Violations {
	var out Violations
	groups := byMiner(writes)
	for _, miner := range sortedKeys(groups) {
		ws := groups[miner]
		out = append(out, epochOrder(miner, ws)...)
		out = append(out, overlaps(tenuresOf(miner, ws))...)
	}
	return out
}

// byMiner groups writes per miner, each group stable-sorted by At.
func byMiner(writes []Write) map[string][]Write {
	m := map[string][]Write{}
	for _, w := range writes {
		m[w.MinerID] = append(m[w.MinerID], w)
	}
	for _, ws := range m {
		sort.SliceStable(ws, func(i, j int) bool { return ws[i].At.Before(ws[j].At) })
	}
	return m
}

type tenureKey struct {
	writer string
	epoch  uint64
}

// tenuresOf groups one miner's time-ordered writes into tenures, ordered by first write.
func tenuresOf(miner string, ws []Write) []Tenure {
	idx := map[tenureKey]int{}
	var ts []Tenure
	for _, w := range ws {
		k := tenureKey{w.Writer, w.Epoch}
		i, ok := idx[k]
		if !ok {
			idx[k] = len(ts)
			ts = append(ts, Tenure{MinerID: miner, Writer: w.Writer, Epoch: w.Epoch, First: w.At, Last: w.At, Writes: 1})
			continue
		}
		ts[i].Last = w.At
		ts[i].Writes++
	}
	return ts // writes were in time order, so tenures are in order of first write
}

// overlaps reports every pair of tenures of different writers whose intervals intersect.
func overlaps(ts []Tenure) Violations {
	var out Violations
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			a, b := ts[i], ts[j] // a.First <= b.First
			if b.First.After(a.Last) {
				continue
			}
			if a.Writer == b.Writer {
				continue // one node under two epochs: epochOrder judges that
			}
			out = append(out, Violation{
				Invariant: InvSingleWriter, Kind: KindOverlap, MinerID: a.MinerID,
				Nodes:  []string{a.Writer, b.Writer},
				Epochs: []uint64{a.Epoch, b.Epoch},
				Times:  []time.Time{a.First, a.Last, b.First, b.Last},
				Count:  a.Writes + b.Writes,
				Detail: fmt.Sprintf("%s overlaps %s: %s wrote at %s before %s's last write at %s",
					a, b, b.Writer, stamp(b.First), a.Writer, stamp(a.Last)),
			})
		}
	}
	return out
}

// epochOrder reports writes whose epoch is below an earlier one (Times: the higher write, the first and the
// last regressive write of that writer and epoch), and non-zero epochs used by two writers.
func epochOrder(miner string, ws []Write) Violations {
	var out Violations
	var high Write // the write that carried the highest epoch so far
	type regKey struct {
		writer string
		epoch  uint64
	}
	regressions := map[regKey]int{} // index into out
	owner := map[uint64]Write{}     // epoch → first write under it
	shared := map[regKey]int{}
	for _, w := range ws {
		if w.Epoch < high.Epoch {
			k := regKey{w.Writer, w.Epoch}
			if i, ok := regressions[k]; ok {
				out[i].Count++
				out[i].Times[2] = w.At
			} else {
				regressions[k] = len(out)
				out = append(out, Violation{
					Invariant: InvSingleWriter, Kind: KindEpochRegression, MinerID: miner,
					Nodes:  []string{high.Writer, w.Writer},
					Epochs: []uint64{high.Epoch, w.Epoch},
					Times:  []time.Time{high.At, w.At, w.At},
					Count:  1,
					Detail: fmt.Sprintf("%s wrote %q with epoch %d at %s after %s had written with epoch %d at %s",
						w.Writer, w.Op, w.Epoch, stamp(w.At), high.Writer, high.Epoch, stamp(high.At)),
				})
			}
		}
		if w.Epoch > high.Epoch {
			high = w
		}
		if w.Epoch == 0 {
			continue
		}
		first, seen := owner[w.Epoch]
		switch {
		case !seen:
			owner[w.Epoch] = w
		case first.Writer != w.Writer:
			k := regKey{w.Writer, w.Epoch}
			if i, ok := shared[k]; ok {
				out[i].Count++
				continue
			}
			shared[k] = len(out)
			out = append(out, Violation{
				Invariant: InvSingleWriter, Kind: KindEpochShared, MinerID: miner,
				Nodes:  []string{first.Writer, w.Writer},
				Epochs: []uint64{w.Epoch},
				Times:  []time.Time{first.At, w.At},
				Count:  1,
				Detail: fmt.Sprintf("epoch %d used by %s (first at %s) and by %s (first at %s)",
					w.Epoch, first.Writer, stamp(first.At), w.Writer, stamp(w.At)),
			})
		}
	}
	return out
}
