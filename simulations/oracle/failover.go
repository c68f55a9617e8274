package oracle

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// LeaseEventKind is what a LeaseEvent records.
type LeaseEventKind string

const (
	// LeaseFault: the harness made the holder fail (killed it, cut its WAN). NodeID is the holder, Epoch its
	// epoch then (0 when unknown). Record it only for faults after which another node should take over.
	LeaseFault LeaseEventKind = "fault"
	// LeaseGranted: the cloud gave NodeID the lease at Epoch (server/lease HolderChanged, or a grant).
	LeaseGranted LeaseEventKind = "granted"
	// LeaseFenced: NodeID stopped writing (node/lease Fenced). For timelines.
	LeaseFenced LeaseEventKind = "fenced"
	// LeaseDemoted: NodeID learnt it lost the lease (node/lease Demoted). For timelines.
	LeaseDemoted LeaseEventKind = "demoted"
)

// LeaseEvent is one change of a pair's lease, or a fault on its holder.
type LeaseEvent struct {
	At     time.Time
	PairID string
	NodeID string
	Kind   LeaseEventKind
	Epoch  uint64
	Detail string
}

// Failover is one holder fault and what followed it.
type Failover struct {
	PairID string
	// From is the node that failed at FaultAt, holding FromEpoch.
	From      string
	FromEpoch uint64
	FaultAt   time.Time
	// Granted: the cloud gave another node the lease (To, Epoch) at GrantedAt.
	Granted   bool
	To        string
	Epoch     uint64
	GrantedAt time.Time
	// InControl: To wrote to a miner under Epoch or later at InControlAt (the first such write).
	InControl   bool
	InControlAt time.Time
}

// Time is how long control took to come back: FaultAt to the new holder's first miner write; 0 when it
// never did.
func (f Failover) Time() time.Duration {
	if !f.InControl {
		return 0
	}
	return f.InControlAt.Sub(f.FaultAt)
}

// GrantTime is FaultAt to the grant; 0 when there was none.
func (f Failover) GrantTime() time.Duration {
	if !f.Granted {
		return 0
	}
	return f.GrantedAt.Sub(f.FaultAt)
}

func (f Failover) String() string {
	s := fmt.Sprintf("pair %q: %s (epoch %d) failed at %s", f.PairID, f.From, f.FromEpoch, stamp(f.FaultAt))
	switch {
	case !f.Granted:
		return s + "; no other node was granted the lease"
	case !f.InControl:
		return s + fmt.Sprintf("; %s granted epoch %d after %s, but never wrote", f.To, f.Epoch, f.GrantTime())
	}
	return s + fmt.Sprintf("; %s granted epoch %d after %s, first write after %s", f.To, f.Epoch, f.GrantTime(), f.Time())
}

// FailoverDetails pairs every LeaseFault with what followed, before the pair's next fault: the first
// LeaseGranted of the same pair (PairID "" on either side matches any) to another node with a higher epoch
// than the fault's (any, when the fault's epoch is 0), and that node's first write at or after the fault
// under the granted epoch or a later one. Control is measured from the miners' logs, not from the grant:
// a standby is in control when a miner has taken a write from it.
func FailoverDetails(events []LeaseEvent, writes []Write) []Failover {
	evs := append([]LeaseEvent(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
	ws := append([]Write(nil), writes...)
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].At.Before(ws[j].At) })
	samePair := func(a, b string) bool { return a == "" || b == "" || a == b }

	var out []Failover
	for i, f := range evs {
		if f.Kind != LeaseFault {
			continue
		}
		fo := Failover{PairID: f.PairID, From: f.NodeID, FromEpoch: f.Epoch, FaultAt: f.At}
		end := time.Time{} // the pair's next fault; zero: none
		for _, n := range evs[i+1:] {
			if n.Kind == LeaseFault && samePair(n.PairID, f.PairID) {
				end = n.At
				break
			}
		}
		for _, g := range evs[i+1:] {
			if !end.IsZero() && !g.At.Before(end) {
				break
			}
			if g.Kind == LeaseGranted && samePair(g.PairID, f.PairID) && g.NodeID != f.NodeID && g.Epoch > f.Epoch {
				fo.Granted, fo.To, fo.Epoch, fo.GrantedAt = true, g.NodeID, g.Epoch, g.At
				break
			}
		}
		if fo.Granted {
			for _, w := range ws {
				if w.At.Before(f.At) || w.Writer != fo.To || w.Epoch < fo.Epoch {
					continue
				}
				if !end.IsZero() && !w.At.Before(end) {
					break
				}
				fo.InControl, fo.InControlAt = true, w.At
				break
			}
		}
		out = append(out, fo)
	}
	return out
}

// FailoverTimes returns Time of every failover that ended with the new holder in control, in fault order.
func FailoverTimes(events []LeaseEvent, writes []Write) []time.Duration {
	var out []time.Duration
	for _, f := range FailoverDetails(events, writes) {
		if f.InControl {
			out = append(out, f.Time())
		}
	}
	return out
}

// FailoverWithin checks invariant 5's first half: every failover ended with another node in control
// (KindNoFailover) within target (KindSlowFailover).
func FailoverWithin(fs []Failover, target time.Duration) Violations {
	var out Violations
	for _, f := range fs {
		v := Violation{Invariant: InvRecovery, Nodes: []string{f.From}, Epochs: []uint64{f.FromEpoch}, Times: []time.Time{f.FaultAt}, Detail: f.String()}
		if f.Granted {
			v.Nodes = append(v.Nodes, f.To)
			v.Epochs = append(v.Epochs, f.Epoch)
			v.Times = append(v.Times, f.GrantedAt)
		}
		switch {
		case !f.InControl:
			v.Kind = KindNoFailover
		case f.Time() > target:
			v.Kind = KindSlowFailover
			v.Times = append(v.Times, f.InControlAt)
			v.Detail += fmt.Sprintf(" (target %s)", target)
		default:
			continue
		}
		out = append(out, v)
	}
	return out
}

// Summary is the distribution of a set of durations. Percentiles are nearest-rank: P99 of 50 samples is
// the largest but none, of 100 the 99th smallest.
type Summary struct {
	N    int           `json:"n"`
	Min  time.Duration `json:"min"`
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
	Max  time.Duration `json:"max"`
	Mean time.Duration `json:"mean"`
}

func (s Summary) String() string {
	if s.N == 0 {
		return "n=0"
	}
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", s.N, s.P50, s.P99, s.Max)
}

// Summarize returns the distribution of ds (the zero Summary when empty).
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{N: len(s), Min: s[0], P50: rank(s, 50), P99: rank(s, 99), Max: s[len(s)-1], Mean: sum / time.Duration(len(s))}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of ds; 0 when ds is empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return rank(s, p)
}

// rank is the nearest-rank percentile of sorted s.
func rank(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}
