package curtail

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// EventFromRequest reads a curtailment start from the wire (a cloud command or the local UI): target_kw is
// the power to shed (TargetShed), full curtails every miner in scope, miner_ids is the scope (empty: the
// whole site) and end_at_unix_ms the optional end. It does not validate: Begin does.
func EventFromRequest(r *pb.CurtailRequest, source string) Event {
	e := Event{ID: r.GetEventId(), Scope: Scope{MinerIDs: append([]string(nil), r.GetMinerIds()...)}, Source: source}
	if r.GetFull() {
		e.Target = Full()
	} else {
		e.Target = ShedKW(r.GetTargetKw())
	}
	if ms := r.GetEndAtUnixMs(); ms > 0 {
		e.End = time.UnixMilli(ms)
	}
	return e
}

// StatusState names a status for the wire: "scheduled", "ramping" (curtailing, target not met yet),
// "holding" (target met), "releasing", "done" (idle after an event; "failed" when miners could not be
// released) or "idle" (never an event).
func StatusState(s Status) string {
	switch s.Phase {
	case PhaseScheduled:
		return "scheduled"
	case PhaseCurtailing:
		if s.Achieved {
			return "holding"
		}
		return "ramping"
	case PhaseReleasing:
		return "releasing"
	}
	if s.Last == nil {
		return "idle"
	}
	if len(s.Last.NotReleased) > 0 {
		return "failed"
	}
	return "done"
}

// StatusProto is the wire form of a status (EVENT_KIND_CURTAIL, the node's UIs): target_kw is the power to
// shed asked for (the event's shed, or for a limit its baseline minus the limit; 0 for full), achieved_kw
// the power shed now (baseline minus measured).
func StatusProto(s Status) *pb.CurtailStatus {
	out := &pb.CurtailStatus{State: StatusState(s), Curtailed: append([]string{}, s.Curtailed...),
		Stragglers: append([]string{}, s.Stragglers...)}
	if s.Phase == PhaseIdle {
		if s.Last != nil {
			out.EventId = s.Last.EventID
		}
		return out
	}
	out.EventId, out.Source = s.Event.ID, s.Event.Source
	switch s.Event.Target.Kind {
	case TargetFull:
		out.Full = true
	case TargetShed:
		out.TargetKw = s.Event.Target.KW
	case TargetLimit:
		out.TargetKw = max(0, s.BaselineKW-s.Event.Target.KW)
	}
	out.AchievedKw = max(0, s.ReducedKW)
	return out
}

// SourceKind reduces a Source ("cloud:user:alice", "local:admin", "automation:evening") to the wire's source
// vocabulary: cloud, local, schedule, rule:<id>, or the source itself when it has no known prefix.
func SourceKind(source string) string {
	kind, rest, _ := strings.Cut(source, ":")
	switch kind {
	case "cloud", "local":
		return kind
	case "automation", "schedule":
		return "schedule"
	case "rule":
		return "rule:" + rest
	}
	return source
}

// Describe is the status in one line ("holding: ceiling 900.0 kW, measured 895.2 kW, 120 curtailed, 0
// stragglers").
func (s Status) Describe() string {
	return fmt.Sprintf("%s: ceiling %.1f kW, measured %.1f kW, %d curtailed, %d stragglers", StatusState(s), s.TargetKW,
		s.MeasuredKW, s.MinersCurtailed, len(s.Stragglers))
}
