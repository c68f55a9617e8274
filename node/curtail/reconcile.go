package curtail

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// Phase is where the event is.
type Phase int

const (
	// PhaseIdle: no event.
	PhaseIdle Phase = iota
	// PhaseScheduled: an event waits for its start.
	PhaseScheduled
	// PhaseCurtailing: ramping down, then holding the target (re-curtailing miners that come back, choosing
	// more when new miners come online).
	PhaseCurtailing
	// PhaseReleasing: the event ended or was stopped; miners are released in ramp steps.
	PhaseReleasing
)

func (p Phase) String() string {
	switch p {
	case PhaseIdle:
		return "idle"
	case PhaseScheduled:
		return "scheduled"
	case PhaseCurtailing:
		return "curtailing"
	case PhaseReleasing:
		return "releasing"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// TrackPhase is where one miner is in the event.
type TrackPhase int

const (
	// TrackQueued: chosen (or to be re-curtailed); waits for a ramp step.
	TrackQueued TrackPhase = iota + 1
	// TrackSent: commanded; waits SettleTime and a reading taken after it.
	TrackSent
	// TrackHeld: verified curtailed; watched in case it comes back (a reboot).
	TrackHeld
	// TrackRetry: a straggler (did not follow, or the command failed); retried at NextAt.
	TrackRetry
	// TrackWaiting: unreachable or rebooting; checked again when it answers.
	TrackWaiting
	// TrackFailed: given up after MaxRetries; not chosen again in this event.
	TrackFailed
	// TrackUnsupported: the driver cannot do it; not chosen again in this event.
	TrackUnsupported
	// TrackReleaseQueued: to be released; waits for a ramp step.
	TrackReleaseQueued
	// TrackReleaseSent: release commanded; waits SettleTime and a reading taken after it.
	TrackReleaseSent
	// TrackReleaseRetry: a release straggler; retried at NextAt.
	TrackReleaseRetry
	// TrackReleaseWaiting: unreachable while being released; given up after GiveUpAfter.
	TrackReleaseWaiting
	// TrackReleaseFailed: the release gave up on it; reported in the outcome for the operator.
	TrackReleaseFailed
)

func (p TrackPhase) String() string {
	switch p {
	case TrackQueued:
		return "queued"
	case TrackSent:
		return "sent"
	case TrackHeld:
		return "held"
	case TrackRetry:
		return "retry"
	case TrackWaiting:
		return "waiting"
	case TrackFailed:
		return "failed"
	case TrackUnsupported:
		return "unsupported"
	case TrackReleaseQueued:
		return "release_queued"
	case TrackReleaseSent:
		return "release_sent"
	case TrackReleaseRetry:
		return "release_retry"
	case TrackReleaseWaiting:
		return "release_waiting"
	case TrackReleaseFailed:
		return "release_failed"
	}
	return fmt.Sprintf("TrackPhase(%d)", int(p))
}

func (p TrackPhase) releasing() bool { return p >= TrackReleaseQueued }

// Track is one miner the event has chosen.
type Track struct {
	MinerID string
	Kind    ActionKind // ActSleep or ActLimit
	LimitW  float64
	// ExpectedW is the draw expected once curtailed; PrevW the draw before; PrevTargetW the power target
	// before (restored on release when > 0).
	ExpectedW, PrevW, PrevTargetW float64
	// Rank orders curtailment (ascending) and release (descending).
	Rank  int
	Phase TrackPhase
	// Reason is why the miner is queued ("plan", "retry", "reverted", "release", "rebalance").
	Reason    string
	CommandID string
	SentAt    time.Time
	// Attempts counts commands sent for the current goal (curtail or release).
	Attempts int
	// NextAt is when a straggler is retried.
	NextAt time.Time
	// WaitingSince is when the miner was found unreachable.
	WaitingSince time.Time
	// Verified: the miner was once verified curtailed in this event.
	Verified bool
	// Reverted counts the times it came back uncurtailed (a reboot) and was curtailed again.
	Reverted  int
	LastError string
}

// Outcome summarises a finished event.
type Outcome struct {
	EventID string
	// Result: "completed" (ended or stopped, and released), "cancelled" (stopped before it started),
	// "superseded" (replaced by another event, which took over its miners).
	Result             string
	Reason             string
	StartedAt, EndedAt time.Time
	Released           int
	// NotReleased are miners the release gave up on (unreachable or not following): the operator should
	// look at them.
	NotReleased []string
}

// State is curtailment's whole state: pure data, owned by the CurtailActor, advanced by Begin, End and
// Reconcile. Its maps are never modified in place: every transition returns a copy.
type State struct {
	// Config is the configuration in force (the CurtailActor's at creation).
	Config Config
	Phase  Phase
	// Event is the event in progress (unset when idle).
	Event Event
	// Full: every miner in scope is to be curtailed.
	Full bool
	// TargetW is the scope's ceiling; BaselineW the scope's uncurtailed draw when it was resolved.
	TargetW, BaselineW float64
	// Rebase asks the next Reconcile to resolve the target again and rebalance (a new or updated event).
	Rebase   bool
	Tracks   map[string]Track
	NextRank int
	// Steps counts ramp steps commanded; LastStepAt is the latest.
	Steps      int
	LastStepAt time.Time
	// MeasuredW is the scope's draw at the last Reconcile.
	MeasuredW float64
	// Achieved: the target is met (within tolerance); AchievedAt is when it first was in this event.
	Achieved   bool
	AchievedAt time.Time
	// UnmetW is what the target lacks with no more miners to curtail.
	UnmetW    float64
	StartedAt time.Time
	// EndReason says why the event is releasing ("stopped by …", "end time reached").
	EndReason string
	Released  int
	// Last is the previous event's outcome.
	Last *Outcome
}

// NewState returns an idle state with cfg.
func NewState(cfg Config) State { return State{Config: cfg, Tracks: map[string]Track{}} }

func (s State) clone() State {
	s.Tracks = maps.Clone(s.Tracks)
	if s.Tracks == nil {
		s.Tracks = map[string]Track{}
	}
	return s
}

// Result is one miner's answer to a command.
type Result struct {
	CommandID, MinerID string
	Code               pb.ResultCode
	Message            string
}

// Observations are what Reconcile is given: the site's miners now, and the command results received since
// the last call.
type Observations struct {
	Miners  []MinerSnapshot
	Results []Result
}

// Action is one command to one miner. Actions of one step with the same CommandID share one spec and may be
// sent as one command (see Commands).
type Action struct {
	CommandID string
	MinerID   string
	Kind      ActionKind
	Spec      *pb.CommandSpec
	// DeltaW is the expected change in the miner's draw (negative: down).
	DeltaW  float64
	Attempt int
	// Reason: "plan", "retry", "reverted", "release" or "rebalance".
	Reason string
	// Step is the ramp step number (1-based) in the event.
	Step int
}

// Begin starts ev (or schedules it, if its start is ahead). With an event in progress: the same event again
// is a no-op; an event starting now replaces it and takes over its miners (those still needed stay
// curtailed; the rest are released in ramp steps); an event starting later is refused (ErrEventActive).
func Begin(st State, ev Event, now time.Time) (State, error) {
	if err := ev.Validate(); err != nil {
		return st, err
	}
	if !ev.End.IsZero() && !now.Before(ev.End) {
		return st, fmt.Errorf("event %s ended at %s: %w", ev.ID, ev.End.UTC().Format(time.RFC3339), ErrEventOver)
	}
	ev = cloneEvent(ev)
	st = st.clone()
	switch st.Phase {
	case PhaseIdle:
		st.resetFor(ev)
		return st, nil
	case PhaseScheduled:
		if st.Event.ID != ev.ID {
			st.Last = &Outcome{EventID: st.Event.ID, Result: "superseded", Reason: "replaced by event " + ev.ID, EndedAt: now}
		}
		st.resetFor(ev)
		return st, nil
	}
	if st.Event.sameRun(ev) {
		return st, nil
	}
	if ev.Start.After(now) {
		return st, fmt.Errorf("event %s starts at %s while event %s is %s; stop it first: %w",
			ev.ID, ev.Start.UTC().Format(time.RFC3339), st.Event.ID, st.Phase, ErrEventActive)
	}
	if st.Event.ID != ev.ID {
		st.Last = &Outcome{EventID: st.Event.ID, Result: "superseded", Reason: "replaced by event " + ev.ID,
			StartedAt: st.StartedAt, EndedAt: now, Released: st.Released}
		st.StartedAt, st.Released, st.Steps = now, 0, 0
		st.Achieved, st.AchievedAt = false, time.Time{}
	}
	// Take the miners over: those on their way back are held again (the next Reconcile re-curtails any that
	// already came back), released ones are forgotten (they are candidates like any other).
	for id, t := range st.Tracks {
		switch t.Phase {
		case TrackReleaseQueued, TrackReleaseRetry, TrackReleaseWaiting:
			t.Phase, t.Attempts, t.NextAt = TrackHeld, 0, time.Time{}
			st.Tracks[id] = t
		case TrackReleaseFailed:
			delete(st.Tracks, id)
		}
	}
	st.Event = ev
	st.Phase = PhaseCurtailing
	st.Rebase = true
	return st, nil
}

func (s *State) resetFor(ev Event) {
	s.Phase = PhaseScheduled
	s.Event = ev
	s.Tracks = map[string]Track{}
	s.NextRank, s.Steps, s.Released = 0, 0, 0
	// LastStepAt is kept: the ramp limit holds across events too.
	s.StartedAt, s.AchievedAt, s.EndReason = time.Time{}, time.Time{}, ""
	s.Achieved, s.Rebase, s.Full = false, true, false
	s.TargetW, s.BaselineW, s.UnmetW, s.MeasuredW = 0, 0, 0, 0
}

// End stops the event named eventID: a scheduled event is cancelled; a running one starts releasing its
// miners in ramp steps. Ending an event already releasing is a no-op.
func End(st State, eventID, reason string, now time.Time) (State, error) {
	if st.Phase == PhaseIdle || st.Event.ID != eventID {
		cur := "none"
		if st.Phase != PhaseIdle {
			cur = st.Event.ID
		}
		return st, fmt.Errorf("stop event %s (in progress: %s): %w", eventID, cur, ErrUnknownEvent)
	}
	st = st.clone()
	switch st.Phase {
	case PhaseScheduled:
		st.Last = &Outcome{EventID: eventID, Result: "cancelled", Reason: reason, EndedAt: now}
		st.Phase = PhaseIdle
		st.Tracks = map[string]Track{}
	case PhaseCurtailing:
		st.beginRelease(reason)
	}
	return st, nil
}

// beginRelease moves every miner the event acted on to release; miners never commanded are dropped.
func (s *State) beginRelease(reason string) {
	s.Phase = PhaseReleasing
	s.EndReason = reason
	for id, t := range s.Tracks {
		switch {
		case t.Phase.releasing():
		case t.Phase == TrackUnsupported || (t.Phase == TrackQueued && t.Attempts == 0 && !t.Verified):
			delete(s.Tracks, id)
		default:
			t.Phase, t.Attempts, t.NextAt, t.Reason = TrackReleaseQueued, 0, time.Time{}, "release"
			s.Tracks[id] = t
		}
	}
}

// Reconcile is curtailment's decision: given the state, what the miners report and the command results
// received, and the time, it returns the commands to send now and the next state. It
//
//   - starts a scheduled event at its start, and ends a running one at its end;
//   - verifies each commanded miner once SettleTime has passed, from a reading taken after that: a miner
//     within its tolerance is held; a straggler is retried with backoff, and given up on after MaxRetries
//     (another miner is then chosen);
//   - re-curtails a held miner that comes back uncurtailed (rebooted), and chooses more miners when the
//     scope's draw rises above target + tolerance/2 (miners coming online);
//   - releases, when the event ends, every miner it acted on, verified the same way;
//   - commands at most one ramp step per StepInterval, of at most StepKW / StepMiners.
//
// It is pure.
func Reconcile(st State, obs Observations, now time.Time) ([]Action, State) {
	st = st.clone()
	switch st.Phase {
	case PhaseIdle:
		return nil, st
	case PhaseScheduled:
		if now.Before(st.Event.Start) {
			return nil, st
		}
		st.Phase, st.StartedAt, st.Rebase = PhaseCurtailing, now, true
	}
	if st.Phase == PhaseCurtailing && !st.Event.End.IsZero() && !now.Before(st.Event.End) {
		st.beginRelease("end time reached")
	}
	scope := st.Event.Scope.set()
	byID := make(map[string]MinerSnapshot, len(obs.Miners))
	in := make([]MinerSnapshot, 0, len(obs.Miners))
	for _, m := range obs.Miners {
		byID[m.ID] = m
		if inScope(scope, m.ID) {
			in = append(in, m)
		}
	}
	results := make(map[[2]string]Result, len(obs.Results))
	for _, r := range obs.Results {
		results[[2]string{r.CommandID, r.MinerID}] = r
	}

	st.observe(byID, results, now)

	if st.Phase == PhaseCurtailing {
		if st.Rebase {
			st.rebase(in, scope)
		}
		st.selectMore(in)
	}
	actions := st.emit(byID, now)
	st.measure(in, now)
	if st.Phase == PhaseReleasing && st.releaseDone() {
		st.finish(now)
	}
	return actions, st
}

// observe advances every track from the miners' readings and the command results.
func (s *State) observe(byID map[string]MinerSnapshot, results map[[2]string]Result, now time.Time) {
	cfg := s.Config
	for id, t := range s.Tracks {
		m, ok := byID[id]
		if !ok { // removed from the site
			delete(s.Tracks, id)
			continue
		}
		rel := t.Phase.releasing()
		settled := !t.SentAt.IsZero() && !m.ObservedAt.Before(t.SentAt.Add(cfg.SettleTime))
		switch t.Phase {
		case TrackSent, TrackReleaseSent:
			if r, ok := results[[2]string{t.CommandID, id}]; ok && failed(r.Code) {
				t.LastError = r.Message
				if r.Code == pb.ResultCode_RESULT_CODE_UNSUPPORTED && !rel {
					t.Phase = TrackUnsupported
				} else {
					s.straggle(&t, now)
				}
				break
			}
			if now.Before(t.SentAt.Add(cfg.SettleTime)) {
				break
			}
			if !m.reachable() {
				t.Phase, t.WaitingSince = waitingPhase(rel), now
				break
			}
			if !settled {
				break // no reading taken after the settle time yet
			}
			if s.verified(t, m) {
				s.settle(id, &t)
				if t.Phase == 0 {
					continue // released and forgotten
				}
				break
			}
			t.LastError = fmt.Sprintf("draws %.0f W, expected %.0f W", m.PowerW, t.ExpectedW)
			if rel {
				t.LastError = fmt.Sprintf("draws %.0f W after release (state %s)", m.PowerW, m.State)
			}
			s.straggle(&t, now)
		case TrackHeld:
			switch {
			case !m.reachable():
				t.Phase, t.WaitingSince = TrackWaiting, now
			case settled && !s.verified(t, m):
				t.Phase, t.Attempts, t.Reason = TrackQueued, 0, "reverted"
				t.Reverted++
				t.LastError = fmt.Sprintf("came back drawing %.0f W", m.PowerW)
			}
		case TrackWaiting, TrackReleaseWaiting:
			if m.reachable() && m.ObservedAt.After(t.WaitingSince) {
				switch {
				case s.verified(t, m) && (rel || t.Verified):
					s.settle(id, &t)
					if t.Phase == 0 {
						continue
					}
				case rel:
					t.Phase, t.Attempts, t.Reason = TrackReleaseQueued, 0, "release"
				default:
					if t.Verified {
						t.Reverted++
						t.Reason = "reverted"
					}
					t.Phase, t.Attempts = TrackQueued, 0
				}
			} else if rel && now.Sub(t.WaitingSince) >= cfg.GiveUpAfter {
				t.Phase = TrackReleaseFailed
				t.LastError = fmt.Sprintf("unreachable for %s during release", now.Sub(t.WaitingSince).Round(time.Second))
			}
		case TrackRetry, TrackReleaseRetry:
			if m.reachable() && settled && s.verified(t, m) {
				s.settle(id, &t) // the earlier command took effect late
				if t.Phase == 0 {
					continue
				}
				break
			}
			if !now.Before(t.NextAt) {
				t.Phase = TrackQueued
				if rel {
					t.Phase = TrackReleaseQueued
				}
				t.Reason = "retry"
			}
		case TrackQueued, TrackReleaseQueued:
			if !m.reachable() {
				t.Phase, t.WaitingSince = waitingPhase(rel), now
			}
		}
		s.Tracks[id] = t
	}
}

func waitingPhase(releasing bool) TrackPhase {
	if releasing {
		return TrackReleaseWaiting
	}
	return TrackWaiting
}

func failed(c pb.ResultCode) bool {
	switch c {
	case pb.ResultCode_RESULT_CODE_SUCCEEDED, pb.ResultCode_RESULT_CODE_DUPLICATE,
		pb.ResultCode_RESULT_CODE_PENDING, pb.ResultCode_RESULT_CODE_RUNNING, pb.ResultCode_RESULT_CODE_UNSPECIFIED:
		return false
	}
	return true
}

// verified reports whether m shows the track's goal: curtailed (at most expected + tolerance), or released
// (not curtailed, and drawing clearly more than when curtailed).
func (s *State) verified(t Track, m MinerSnapshot) bool {
	tol := s.Config.minerTolerance(t.PrevW)
	if t.Phase.releasing() {
		return m.State != pb.MinerState_MINER_STATE_CURTAILED && m.PowerW >= math.Min(t.PrevW-tol, t.ExpectedW+tol)
	}
	return m.PowerW <= t.ExpectedW+tol
}

// settle records a verified track: held, or (released) forgotten — t.Phase is then 0.
func (s *State) settle(id string, t *Track) {
	if t.Phase.releasing() {
		delete(s.Tracks, id)
		s.Released++
		*t = Track{}
		return
	}
	t.Phase, t.Verified, t.LastError, t.NextAt = TrackHeld, true, "", time.Time{}
}

// straggle schedules a retry of a miner that did not follow, or gives up on it.
func (s *State) straggle(t *Track, now time.Time) {
	rel := t.Phase.releasing()
	if t.Attempts > s.Config.MaxRetries {
		t.Phase = TrackFailed
		if rel {
			t.Phase = TrackReleaseFailed
		}
		return
	}
	t.Phase = TrackRetry
	if rel {
		t.Phase = TrackReleaseRetry
	}
	t.NextAt = now.Add(s.Config.backoff(t.Attempts))
}

// contribution is what a miner is expected to draw given its track (committed changes count as done).
func contribution(m MinerSnapshot, t Track, tracked bool) float64 {
	if !tracked {
		return m.countedW()
	}
	switch t.Phase {
	case TrackQueued, TrackSent, TrackRetry, TrackWaiting:
		return t.ExpectedW
	case TrackReleaseQueued, TrackReleaseSent, TrackReleaseRetry, TrackReleaseWaiting:
		return t.PrevW
	}
	return m.countedW()
}

func (s *State) projected(in []MinerSnapshot) float64 {
	p := 0.0
	for _, m := range in {
		t, ok := s.Tracks[m.ID]
		p += contribution(m, t, ok)
	}
	return p
}

// rebase resolves the target for a new or updated event, and releases what it no longer needs: miners out of
// its scope, and (most efficient first) miners whose release still keeps the scope under target.
func (s *State) rebase(in []MinerSnapshot, scope map[string]struct{}) {
	s.Rebase = false
	baseline := 0.0
	for _, m := range in {
		if t, ok := s.Tracks[m.ID]; ok && t.Phase != TrackFailed && t.Phase != TrackUnsupported {
			baseline += t.PrevW
		} else {
			baseline += m.countedW()
		}
	}
	s.BaselineW = baseline
	s.TargetW, s.Full = resolveTarget(s.Event.Target, baseline)
	release := func(id string, t Track) {
		if t.Phase == TrackQueued && t.Attempts == 0 && !t.Verified {
			delete(s.Tracks, id)
			return
		}
		t.Phase, t.Attempts, t.NextAt, t.Reason = TrackReleaseQueued, 0, time.Time{}, "rebalance"
		s.Tracks[id] = t
	}
	for id, t := range s.Tracks {
		if !inScope(scope, id) && !t.Phase.releasing() {
			release(id, t)
		}
	}
	if s.Full {
		return
	}
	byID := make(map[string]MinerSnapshot, len(in))
	for _, m := range in {
		byID[m.ID] = m
	}
	proj := s.projected(in)
	ids := s.trackIDs(func(t Track) bool {
		switch t.Phase {
		case TrackQueued, TrackSent, TrackHeld, TrackRetry, TrackWaiting:
			return true
		}
		return false
	})
	slices.SortFunc(ids, func(a, b string) int { return cmp.Compare(s.Tracks[b].Rank, s.Tracks[a].Rank) })
	for _, id := range ids {
		t := s.Tracks[id]
		rise := t.PrevW - contribution(byID[id], t, true)
		if proj+rise <= s.TargetW {
			proj += rise
			release(id, t)
		}
	}
}

// selectMore chooses more miners while the projected draw exceeds target + tolerance/2 (any capable miner
// left, for a full target).
func (s *State) selectMore(in []MinerSnapshot) {
	proj := s.projected(in)
	tol := s.Config.siteTolerance(s.TargetW)
	if !s.Full && proj <= s.TargetW+tol/2 {
		s.UnmetW = 0
		return
	}
	cands := candidates(s.Config, s.Event, in, func(id string) bool { _, ok := s.Tracks[id]; return ok })
	as, proj := choose(s.Config, s.Event.Mode, s.Full, cands, proj, s.TargetW)
	byID := make(map[string]MinerSnapshot, len(in))
	for _, m := range in {
		byID[m.ID] = m
	}
	for _, a := range as {
		m := byID[a.MinerID]
		s.NextRank++
		s.Tracks[a.MinerID] = Track{MinerID: a.MinerID, Kind: a.Kind, LimitW: a.LimitW, ExpectedW: a.ExpectedW,
			PrevW: a.FromW, PrevTargetW: m.PowerTargetW, Rank: s.NextRank, Phase: TrackQueued, Reason: "plan"}
	}
	s.UnmetW = 0
	if !s.Full && proj > s.TargetW+tol {
		s.UnmetW = proj - s.TargetW
	}
}

// emit commands the next ramp step, if one is due: queued curtailments by rank, then queued releases most
// efficient first, as many as fit in StepKW / StepMiners (at least one).
func (s *State) emit(byID map[string]MinerSnapshot, now time.Time) []Action {
	cfg := s.Config
	if !s.LastStepAt.IsZero() && now.Sub(s.LastStepAt) < cfg.StepInterval {
		return nil
	}
	ids := s.trackIDs(func(t Track) bool { return t.Phase == TrackQueued || t.Phase == TrackReleaseQueued })
	if len(ids) == 0 {
		return nil
	}
	slices.SortFunc(ids, func(a, b string) int {
		ta, tb := s.Tracks[a], s.Tracks[b]
		ra, rb := ta.Phase.releasing(), tb.Phase.releasing()
		switch {
		case ra != rb && !ra:
			return -1
		case ra != rb:
			return 1
		case ra:
			return cmp.Compare(tb.Rank, ta.Rank)
		}
		return cmp.Compare(ta.Rank, tb.Rank)
	})
	deltas := make([]float64, len(ids))
	for i, id := range ids {
		deltas[i] = s.delta(s.Tracks[id], byID[id])
	}
	n := stepSize(cfg, deltas)
	s.Steps++
	s.LastStepAt = now
	out := make([]Action, 0, n)
	for i, id := range ids[:n] {
		t := s.Tracks[id]
		spec, key := t.spec()
		t.CommandID = fmt.Sprintf("%s/s%d/%s", s.Event.ID, s.Steps, key)
		t.Attempts++
		t.SentAt = now
		kind := t.Kind
		if t.Phase == TrackReleaseQueued {
			t.Phase, kind = TrackReleaseSent, ActRelease
		} else {
			t.Phase = TrackSent
		}
		s.Tracks[id] = t
		out = append(out, Action{CommandID: t.CommandID, MinerID: id, Kind: kind, Spec: spec, DeltaW: deltas[i],
			Attempt: t.Attempts, Reason: t.Reason, Step: s.Steps})
	}
	return out
}

// delta is the signed change in draw a track's next command is expected to make.
func (s *State) delta(t Track, m MinerSnapshot) float64 {
	cur := m.PowerW
	if m.ObservedAt.IsZero() {
		cur = t.PrevW
	}
	if t.Phase.releasing() {
		return math.Max(0, t.PrevW-cur)
	}
	return -math.Max(0, cur-t.ExpectedW)
}

// spec is the command for a track's goal, and a key naming it (commands with one key share a spec).
func (t Track) spec() (*pb.CommandSpec, string) {
	switch {
	case t.Phase.releasing() && t.PrevTargetW > 0:
		return &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL, PowerTargetW: t.PrevTargetW}, fmt.Sprintf("uncurtail-%.0f", t.PrevTargetW)
	case t.Phase.releasing():
		return &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL}, "uncurtail"
	case t.Kind == ActLimit:
		return &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL, PowerTargetW: t.LimitW}, fmt.Sprintf("limit-%.0f", t.LimitW)
	}
	return &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}, "sleep"
}

func (s *State) trackIDs(keep func(Track) bool) []string {
	var ids []string
	for id, t := range s.Tracks {
		if keep(t) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// measure records the scope's draw and whether the target is met.
func (s *State) measure(in []MinerSnapshot, now time.Time) {
	w := 0.0
	for _, m := range in {
		w += m.countedW()
	}
	s.MeasuredW = w
	if s.Phase != PhaseCurtailing {
		s.Achieved = false
		return
	}
	if s.Full {
		s.Achieved = true
		for _, t := range s.Tracks {
			if t.Phase != TrackHeld {
				s.Achieved = false
				break
			}
		}
		if s.Achieved {
			for _, m := range in {
				if _, ok := s.Tracks[m.ID]; !ok && selectable(m, s.Event.Mode) {
					s.Achieved = false
					break
				}
			}
		}
	} else {
		s.Achieved = w <= s.TargetW+s.Config.siteTolerance(s.TargetW)
	}
	if s.Achieved && s.AchievedAt.IsZero() {
		s.AchievedAt = now
	}
}

func (s *State) releaseDone() bool {
	for _, t := range s.Tracks {
		if t.Phase != TrackReleaseFailed {
			return false
		}
	}
	return true
}

func (s *State) finish(now time.Time) {
	o := &Outcome{EventID: s.Event.ID, Result: "completed", Reason: s.EndReason, StartedAt: s.StartedAt, EndedAt: now,
		Released: s.Released}
	for id := range s.Tracks {
		o.NotReleased = append(o.NotReleased, id)
	}
	slices.Sort(o.NotReleased)
	*s = State{Config: s.Config, Tracks: map[string]Track{}, Last: o, LastStepAt: s.LastStepAt}
}
