package curtail

import (
	"slices"
	"time"
)

// Status is what the local UI, the cloud and the metrics show of curtailment.
type Status struct {
	Phase Phase
	// Event is the event in progress (zero when idle).
	Event Event
	// TargetKW is the scope's ceiling (0 for a full target); BaselineKW its uncurtailed draw.
	TargetKW, BaselineKW float64
	// MeasuredKW is the scope's draw now; ReducedKW = BaselineKW − MeasuredKW.
	MeasuredKW, ReducedKW float64
	ToleranceKW           float64
	// Achieved: the target is met within tolerance (for a full target: every capable miner curtailed).
	Achieved   bool
	AchievedAt time.Time
	// UnmetKW is what the target lacks with no more miners to curtail.
	UnmetKW   float64
	StartedAt time.Time
	// MinersCurtailed are verified curtailed; MinersPending chosen or commanded and not verified yet;
	// MinersWaiting unreachable or rebooting; MinersReleasing on their way back.
	MinersCurtailed, MinersPending, MinersWaiting, MinersReleasing int
	// Curtailed are the miners verified curtailed (MinersCurtailed of them), sorted.
	Curtailed []string
	// Stragglers are miners that did not follow a command (being retried, or given up on), sorted.
	Stragglers []string
	// Failed are stragglers given up on (a subset of Stragglers).
	Failed     []string
	Steps      int
	LastStepAt time.Time
	// Last is the previous event's outcome.
	Last *Outcome
}

// Status summarises the state.
func (s State) Status() Status {
	st := Status{Phase: s.Phase, Achieved: s.Achieved, AchievedAt: s.AchievedAt, StartedAt: s.StartedAt,
		Steps: s.Steps, LastStepAt: s.LastStepAt, Last: s.Last, MeasuredKW: s.MeasuredW / 1000}
	if s.Phase == PhaseIdle {
		return st
	}
	st.Event = s.Event
	st.TargetKW, st.BaselineKW, st.UnmetKW = s.TargetW/1000, s.BaselineW/1000, s.UnmetW/1000
	st.ToleranceKW = s.Config.siteTolerance(s.TargetW) / 1000
	if s.BaselineW > 0 {
		st.ReducedKW = (s.BaselineW - s.MeasuredW) / 1000
	}
	for id, t := range s.Tracks {
		switch t.Phase {
		case TrackHeld:
			st.MinersCurtailed++
			st.Curtailed = append(st.Curtailed, id)
		case TrackQueued, TrackSent:
			st.MinersPending++
		case TrackWaiting, TrackReleaseWaiting:
			st.MinersWaiting++
		case TrackRetry, TrackReleaseRetry:
			st.Stragglers = append(st.Stragglers, id)
		case TrackFailed, TrackReleaseFailed:
			st.Stragglers = append(st.Stragglers, id)
			st.Failed = append(st.Failed, id)
		}
		if t.Phase.releasing() && t.Phase != TrackReleaseFailed {
			st.MinersReleasing++
		}
	}
	slices.Sort(st.Curtailed)
	slices.Sort(st.Stragglers)
	slices.Sort(st.Failed)
	return st
}
