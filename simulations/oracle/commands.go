package oracle

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Issued is a command the harness gave the operator API (or the local UI), whatever the answer.
type Issued struct {
	CommandID string
	// MinerIDs are the miners it names.
	MinerIDs []string
	At       time.Time
	// Action is for the report only ("reboot", "stop").
	Action string
}

// Outcome is what the operator was told about a command.
type Outcome int

const (
	// OutcomeAccepted: the API took the command (it is durable and will be delivered).
	OutcomeAccepted Outcome = iota + 1
	// OutcomeSucceeded: the API reported the command done on the miner.
	OutcomeSucceeded
	// OutcomeFailed: the API reported a final failure on the miner (refused, failed, timed out).
	OutcomeFailed
)

func (o Outcome) String() string {
	switch o {
	case OutcomeAccepted:
		return "accepted"
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeFailed:
		return "failed"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Acked is one thing the operator was told about a command.
type Acked struct {
	CommandID string
	// MinerID is the miner the outcome is about; "" means every miner the command names (the API's
	// answer to the POST).
	MinerID string
	Outcome Outcome
	At      time.Time
}

// Executed is one execution of a command on a miner: one record per time a node ran it there, from one
// source (the node's audit, or ExecutionsFromWrites over the miners' logs), never both for one execution.
type Executed struct {
	CommandID string
	MinerID   string
	Node      string
	Epoch     uint64
	At        time.Time
	// Source is for the report ("miner-log", "audit").
	Source string
}

// ExactlyOnce checks invariant 2:
//
//   - no (command, miner) executes more than once (KindDuplicate, one violation per pair, Count the
//     executions);
//   - every (command, miner) the operator was told succeeded executed, and every one it was told was
//     accepted either executed or was later reported failed (KindLost);
//   - every execution belongs to an issued command (KindUnissued) naming that miner (KindWrongMiner), and
//     every acknowledgement to an issued command (KindUnknownAck): a silently skipped record could hide a
//     lost command.
func ExactlyOnce(issued []Issued, executed []Executed, acked []Acked) Violations {
	var out Violations
	cmds := map[string]Issued{}
	for _, c := range issued {
		cmds[c.CommandID] = c
	}
	type pair struct{ cmd, miner string }
	runs := map[pair][]Executed{}
	var order []pair
	for _, e := range executed {
		p := pair{e.CommandID, e.MinerID}
		if _, ok := runs[p]; !ok {
			order = append(order, p)
		}
		runs[p] = append(runs[p], e)
	}
	sort.Slice(order, func(i, j int) bool {
		if order[i].cmd != order[j].cmd {
			return order[i].cmd < order[j].cmd
		}
		return order[i].miner < order[j].miner
	})
	for _, p := range order {
		es := runs[p]
		sort.SliceStable(es, func(i, j int) bool { return es[i].At.Before(es[j].At) })
		c, known := cmds[p.cmd]
		switch {
		case !known:
			out = append(out, execViolation(InvExactlyOnce, KindUnissued, es,
				fmt.Sprintf("executed %d time(s) but never issued: %s", len(es), describeExecs(es))))
		case !slices.Contains(c.MinerIDs, p.miner):
			out = append(out, execViolation(InvExactlyOnce, KindWrongMiner, es,
				fmt.Sprintf("executed on a miner it does not name (it names %v): %s", c.MinerIDs, describeExecs(es))))
		}
		if len(es) > 1 {
			out = append(out, execViolation(InvExactlyOnce, KindDuplicate, es,
				fmt.Sprintf("executed %d times: %s", len(es), describeExecs(es))))
		}
	}

	// Outcomes per (command, miner), the command-wide ones spread over the miners it names.
	told := map[pair][]Acked{}
	var toldOrder []pair
	tell := func(p pair, a Acked) {
		if _, ok := told[p]; !ok {
			toldOrder = append(toldOrder, p)
		}
		told[p] = append(told[p], a)
	}
	unknown := map[string]bool{}
	for _, a := range acked {
		c, ok := cmds[a.CommandID]
		if !ok {
			if !unknown[a.CommandID] {
				unknown[a.CommandID] = true
				out = append(out, Violation{Invariant: InvExactlyOnce, Kind: KindUnknownAck, CommandID: a.CommandID,
					MinerID: a.MinerID, Times: []time.Time{a.At},
					Detail: fmt.Sprintf("the API reported %s at %s for a command the harness never issued", a.Outcome, stamp(a.At))})
			}
			continue
		}
		if a.MinerID != "" {
			tell(pair{a.CommandID, a.MinerID}, a)
			continue
		}
		for _, m := range c.MinerIDs {
			tell(pair{a.CommandID, m}, a)
		}
	}
	sort.Slice(toldOrder, func(i, j int) bool {
		if toldOrder[i].cmd != toldOrder[j].cmd {
			return toldOrder[i].cmd < toldOrder[j].cmd
		}
		return toldOrder[i].miner < toldOrder[j].miner
	})
	for _, p := range toldOrder {
		if len(runs[p]) > 0 {
			continue
		}
		var accepted, succeeded, failed *Acked
		for i := range told[p] {
			a := &told[p][i]
			switch a.Outcome {
			case OutcomeAccepted:
				accepted = first(accepted, a)
			case OutcomeSucceeded:
				succeeded = first(succeeded, a)
			case OutcomeFailed:
				failed = first(failed, a)
			}
		}
		switch {
		case succeeded != nil:
			out = append(out, Violation{Invariant: InvExactlyOnce, Kind: KindLost, CommandID: p.cmd, MinerID: p.miner,
				Times:  []time.Time{succeeded.At},
				Detail: fmt.Sprintf("the API reported it succeeded at %s but no execution on the miner was recorded", stamp(succeeded.At))})
		case accepted != nil && failed == nil:
			out = append(out, Violation{Invariant: InvExactlyOnce, Kind: KindLost, CommandID: p.cmd, MinerID: p.miner,
				Times:  []time.Time{accepted.At},
				Detail: fmt.Sprintf("the API accepted it at %s; it never executed and was never reported failed", stamp(accepted.At))})
		}
	}
	return out
}

func first(cur, a *Acked) *Acked {
	if cur == nil || a.At.Before(cur.At) {
		return a
	}
	return cur
}

// execViolation builds a violation about executions of one (command, miner).
func execViolation(inv Invariant, kind Kind, es []Executed, detail string) Violation {
	v := Violation{Invariant: inv, Kind: kind, CommandID: es[0].CommandID, MinerID: es[0].MinerID, Count: len(es), Detail: detail}
	for _, e := range es {
		if !slices.Contains(v.Nodes, e.Node) {
			v.Nodes = append(v.Nodes, e.Node)
		}
		if !slices.Contains(v.Epochs, e.Epoch) {
			v.Epochs = append(v.Epochs, e.Epoch)
		}
		v.Times = append(v.Times, e.At)
	}
	return v
}

func describeExecs(es []Executed) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("by %s epoch %d at %s", e.Node, e.Epoch, stamp(e.At))
		if e.Source != "" {
			s += " (" + e.Source + ")"
		}
	}
	return s
}

// ExecutionsFromWrites turns the miners' logs into executions, for writes that name their command. Per
// miner, in time order, a run is a stretch of consecutive writes by one writer carrying one command id in
// which no Op repeats; a write of another command, another writer, or a repeated Op starts a new run. Each
// run is one execution, dated and attributed by its first write. Writes without a command id end a run
// and are otherwise ignored.
func ExecutionsFromWrites(writes []Write) []Executed {
	var out []Executed
	groups := byMiner(writes)
	for _, miner := range sortedKeys(groups) {
		var cur Executed // the open run; CommandID "" when none
		ops := map[string]bool{}
		for _, w := range groups[miner] {
			if w.CommandID == "" {
				cur = Executed{}
				continue
			}
			if cur.CommandID == w.CommandID && cur.Node == w.Writer && !ops[w.Op] {
				ops[w.Op] = true
				continue
			}
			cur = Executed{CommandID: w.CommandID, MinerID: miner, Node: w.Writer, Epoch: w.Epoch, At: w.At, Source: "miner-log"}
			out = append(out, cur)
			clear(ops)
			ops[w.Op] = true
		}
	}
	return out
}
