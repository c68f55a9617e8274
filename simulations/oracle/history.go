package oracle

import (
	"fmt"
	"sort"
	"time"
)

// LocalAction is a command an operator ran on a node's local UI while the cloud was unreachable.
type LocalAction struct {
	CommandID string
	NodeID    string
	MinerID   string
	At        time.Time
}

// LocalActionsAudited checks invariant 5's second half: after the WAN healed, every local action's command
// id is in the cloud's audit log (audited: the command ids the cloud's audit history holds).
func LocalActionsAudited(local []LocalAction, audited []string) Violations {
	have := make(map[string]bool, len(audited))
	for _, id := range audited {
		have[id] = true
	}
	as := append([]LocalAction(nil), local...)
	sort.SliceStable(as, func(i, j int) bool { return as[i].At.Before(as[j].At) })
	var out Violations
	seen := map[string]bool{}
	for _, a := range as {
		if have[a.CommandID] || seen[a.CommandID] {
			continue
		}
		seen[a.CommandID] = true
		out = append(out, Violation{Invariant: InvRecovery, Kind: KindUnaudited, CommandID: a.CommandID, MinerID: a.MinerID,
			Nodes: []string{a.NodeID}, Times: []time.Time{a.At},
			Detail: fmt.Sprintf("local action on node %s at %s is not in the cloud audit log", a.NodeID, stamp(a.At))})
	}
	return out
}

// History is everything one trial recorded. Empty parts are not checked (no attempts: nothing forbidden
// to look for; FailoverTarget 0: failover times are measured but not judged).
type History struct {
	Writes   []Write
	Issued   []Issued
	Acked    []Acked
	Executed []Executed
	Attempts []Attempt
	// AckedSamples and StoredSamples: see NoLostTelemetry.
	AckedSamples  []SampleKey
	StoredSamples []SampleKey
	LeaseEvents   []LeaseEvent
	// FailoverTarget is the longest acceptable failover; 0 skips FailoverWithin.
	FailoverTarget time.Duration
	LocalActions   []LocalAction
	Audited        []string
}

// Result is what Check found.
type Result struct {
	Violations Violations
	Failovers  []Failover
	// FailoverTimes summarizes the failovers that ended in control.
	FailoverTimes Summary
}

// Check runs every check over h. Executions come from h.Executed when set, else from the write logs
// (ExecutionsFromWrites); exactly-once is checked only when commands were issued.
func Check(h History) Result {
	var r Result
	r.Violations = append(r.Violations, NoOverlappingWriters(h.Writes)...)
	executed := h.Executed
	if executed == nil {
		executed = ExecutionsFromWrites(h.Writes)
	}
	if len(h.Issued) > 0 || len(h.Acked) > 0 {
		r.Violations = append(r.Violations, ExactlyOnce(h.Issued, executed, h.Acked)...)
	}
	r.Violations = append(r.Violations, NoForbiddenExecution(h.Attempts, executed)...)
	r.Violations = append(r.Violations, NoLostTelemetry(h.AckedSamples, h.StoredSamples)...)
	r.Failovers = FailoverDetails(h.LeaseEvents, h.Writes)
	var times []time.Duration
	for _, f := range r.Failovers {
		if f.InControl {
			times = append(times, f.Time())
		}
	}
	r.FailoverTimes = Summarize(times)
	if h.FailoverTarget > 0 {
		r.Violations = append(r.Violations, FailoverWithin(r.Failovers, h.FailoverTarget)...)
	}
	r.Violations = append(r.Violations, LocalActionsAudited(h.LocalActions, h.Audited)...)
	return r
}
