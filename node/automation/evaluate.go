package automation

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
	"github.com/hashfleet/hashfleet/node/curtail"
)

// ActionKind is what an automatic action does.
type ActionKind int

const (
	// ActCommand: a command to miners, through the Commander.
	ActCommand ActionKind = iota + 1
	// ActStartEvent: a curtailment event started (a schedule window opened).
	ActStartEvent
	// ActStopEvent: a curtailment event stopped (a schedule window closed).
	ActStopEvent
	// ActNotify: an event to the operator, nothing done to miners.
	ActNotify
)

// Action is one automatic action, with the rule that fired it (for the audit record).
type Action struct {
	Kind ActionKind
	// RuleID names the rule or schedule; RuleKind is overheat, hashrate_drop, unreachable or schedule.
	RuleID, RuleKind string
	// Name is what was done: curtail, stop, resume, reboot, notify, start_event, stop_event.
	Name string
	// ID is deterministic (rule, miner, time): the command id, idempotency key and audit id.
	ID       string
	MinerIDs []string
	Spec     *pb.CommandSpec // ActCommand
	Event    curtail.Event   // ActStartEvent
	EventID  string          // ActStopEvent
	Message  string
}

// Observations are what Evaluate is given.
type Observations struct {
	Miners []curtail.MinerSnapshot
}

// Hold is a miner an overheat rule curtailed or stopped.
type Hold struct {
	RuleID string
	// Action is the rule's action ("curtail" or "stop").
	Action   string
	Since    time.Time
	SentAt   time.Time
	Attempts int
}

// HashTrack is one miner's hashrate reference under one rule.
type HashTrack struct {
	RefTHs       float64
	PowerTargetW float64
	// LastAt is the reading last taken in; DropSince when the current drop began (zero: none).
	LastAt, DropSince time.Time
}

// Reboot is a reboot automation issued and has not seen through yet.
type Reboot struct {
	At time.Time
	// Down: the miner was seen rebooting or unreachable since.
	Down bool
}

// ActiveSchedule is the schedule window whose curtailment event automation started.
type ActiveSchedule struct {
	ScheduleID, EventID string
	Start, End          time.Time
}

// Deferred counts reboot candidates not rebooted at the last evaluation, by reason.
type Deferred struct {
	Cap, RateLimited, Suppressed int
}

// State is automation's memory: pure data owned by the AutomationActor, advanced by Evaluate. Its maps are
// never modified in place.
type State struct {
	Config Config
	Held   map[string]Hold      // miner → overheat hold
	Hash   map[string]HashTrack // rule "\x00" miner → hashrate reference
	// LastReboot is when automation last rebooted each miner (the per-miner rate limit).
	LastReboot map[string]time.Time
	Rebooting  map[string]Reboot
	// Notified is the StateSince of the outage already reported, by rule "\x00" miner.
	Notified map[string]time.Time
	// Suppressed is when a site-wide drop suppression began, by rule.
	Suppressed map[string]time.Time
	Schedule   *ActiveSchedule
	Deferred   Deferred
}

// NewState returns an empty state with cfg.
func NewState(cfg Config) State {
	return State{Config: cfg, Held: map[string]Hold{}, Hash: map[string]HashTrack{}, LastReboot: map[string]time.Time{},
		Rebooting: map[string]Reboot{}, Notified: map[string]time.Time{}, Suppressed: map[string]time.Time{}}
}

func (s State) clone() State {
	s.Held = cloneMap(s.Held)
	s.Hash = cloneMap(s.Hash)
	s.LastReboot = cloneMap(s.LastReboot)
	s.Rebooting = cloneMap(s.Rebooting)
	s.Notified = cloneMap(s.Notified)
	s.Suppressed = cloneMap(s.Suppressed)
	if s.Schedule != nil {
		as := *s.Schedule
		s.Schedule = &as
	}
	s.Deferred = Deferred{}
	return s
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return maps.Clone(m)
}

// Evaluate is automation's decision: given the installed policy, the state, the miners now and the time, it
// returns the actions to take, each naming the rule that fired it, and the next state. It is pure.
//
//   - overheat: a mining miner at or above a rule's threshold is curtailed or stopped (once; again after
//     CommandRetry if it is still mining and hot), and resumed once at or below threshold − hysteresis;
//   - hashrate drop: a mining miner more than DropPct below its reference for Window is rebooted, at most
//     once per MinInterval, never with more than MaxConcurrent miners of the site rebooting at once, and not at
//     all during a site-wide drop (SuppressSiteWidePct), which is reported once instead;
//   - unreachable: a miner unreachable for After is reported once per outage;
//   - schedules: the first schedule whose window contains now has its curtailment event running (started at
//     the window's start with the window's end; a deterministic event id, so a restarted node resumes the same
//     event); when no window contains now, automation's event is stopped.
func Evaluate(p Policy, st State, obs Observations, now time.Time) ([]Action, State) {
	st = st.clone()
	if !p.compiledOK() {
		_ = p.Compile() // a policy built in code; an installed one was compiled when verified
	}
	miners := slices.Clone(obs.Miners)
	slices.SortFunc(miners, func(a, b curtail.MinerSnapshot) int { return cmp.Compare(a.ID, b.ID) })
	byID := make(map[string]curtail.MinerSnapshot, len(miners))
	for _, m := range miners {
		byID[m.ID] = m
	}
	var out []Action
	out = append(out, st.overheat(p, miners, byID, now)...)
	out = append(out, st.hashrate(p, miners, byID, now)...)
	out = append(out, st.unreachable(p, miners, now)...)
	out = append(out, st.schedules(p, now)...)
	return out, st
}

func reachable(m curtail.MinerSnapshot) bool {
	switch m.State {
	case pb.MinerState_MINER_STATE_UNREACHABLE, pb.MinerState_MINER_STATE_REBOOTING, pb.MinerState_MINER_STATE_UNSPECIFIED:
		return false
	}
	return true
}

func actionID(rule, miner string, now time.Time) string {
	return fmt.Sprintf("auto:%s:%s:%d", rule, miner, now.UnixMilli())
}

func (s *State) overheat(p Policy, miners []curtail.MinerSnapshot, byID map[string]curtail.MinerSnapshot, now time.Time) []Action {
	var out []Action
	rule := func(id string) *OverheatRule {
		for i := range p.Rules.Overheat {
			if p.Rules.Overheat[i].ID == id {
				return &p.Rules.Overheat[i]
			}
		}
		return nil
	}
	resume := func(id string, h Hold, why string) Action {
		spec := &pb.CommandSpec{Action: pb.Action_ACTION_UNCURTAIL}
		if h.Action == "stop" {
			spec.Action = pb.Action_ACTION_START_MINING
		}
		return Action{Kind: ActCommand, RuleID: h.RuleID, RuleKind: kindOverheat, Name: "resume", ID: actionID(h.RuleID, id, now),
			MinerIDs: []string{id}, Spec: spec, Message: fmt.Sprintf("miner %s: %s", id, why)}
	}
	// Holds whose miner left the site are dropped.
	for id := range s.Held {
		if _, ok := byID[id]; !ok {
			delete(s.Held, id)
		}
	}
	for _, m := range miners {
		if h, held := s.Held[m.ID]; held {
			r := rule(h.RuleID)
			switch {
			case r == nil:
				out = append(out, resume(m.ID, h, "overheat rule "+h.RuleID+" removed from the policy; resuming"))
				delete(s.Held, m.ID)
			case reachable(m) && m.ObservedAt.After(h.SentAt) && m.MaxTempC > 0 && m.MaxTempC <= r.ThresholdC-r.HysteresisC:
				out = append(out, resume(m.ID, h, fmt.Sprintf("cooled to %.1f °C (≤ %.1f − %.1f); resuming", m.MaxTempC, r.ThresholdC, r.HysteresisC)))
				delete(s.Held, m.ID)
			case reachable(m) && m.State == pb.MinerState_MINER_STATE_MINING && m.MaxTempC >= r.ThresholdC &&
				m.ObservedAt.After(h.SentAt) && now.Sub(h.SentAt) >= s.Config.CommandRetry:
				h.SentAt, h.Attempts = now, h.Attempts+1
				s.Held[m.ID] = h
				out = append(out, overheatAction(*r, m, now, fmt.Sprintf(" (still mining; attempt %d)", h.Attempts)))
			}
			continue
		}
		if !reachable(m) || m.MaxTempC <= 0 || m.ObservedAt.IsZero() {
			continue
		}
		if m.State != pb.MinerState_MINER_STATE_MINING && m.State != pb.MinerState_MINER_STATE_ONLINE {
			continue // already stopped or curtailed: it is cooling
		}
		for _, r := range p.Rules.Overheat {
			if inList(r.Miners, m.ID) && m.MaxTempC >= r.ThresholdC {
				s.Held[m.ID] = Hold{RuleID: r.ID, Action: r.Action, Since: now, SentAt: now, Attempts: 1}
				out = append(out, overheatAction(r, m, now, ""))
				break
			}
		}
	}
	return out
}

func overheatAction(r OverheatRule, m curtail.MinerSnapshot, now time.Time, suffix string) Action {
	spec := &pb.CommandSpec{Action: pb.Action_ACTION_CURTAIL}
	if r.Action == "stop" {
		spec.Action = pb.Action_ACTION_STOP_MINING
	}
	return Action{Kind: ActCommand, RuleID: r.ID, RuleKind: kindOverheat, Name: r.Action, ID: actionID(r.ID, m.ID, now),
		MinerIDs: []string{m.ID}, Spec: spec,
		Message: fmt.Sprintf("miner %s at %.1f °C ≥ %.1f °C: %s%s", m.ID, m.MaxTempC, r.ThresholdC, r.Action, suffix)}
}

type rebootCandidate struct {
	id    string
	since time.Time
}

func (s *State) hashrate(p Policy, miners []curtail.MinerSnapshot, byID map[string]curtail.MinerSnapshot, now time.Time) []Action {
	var out []Action
	// Reboots seen through (down and back) or past the grace no longer count toward the cap.
	for id, r := range s.Rebooting {
		m, ok := byID[id]
		switch {
		case !ok || now.Sub(r.At) >= s.Config.RebootGrace:
			delete(s.Rebooting, id)
		case !reachable(m):
			r.Down = true
			s.Rebooting[id] = r
		case r.Down:
			delete(s.Rebooting, id)
		}
	}
	keep := map[string]bool{}
	for _, r := range p.Rules.HashrateDrop {
		keep[r.ID] = true
	}
	for k := range s.Hash {
		rule, miner := splitKey(k)
		if _, ok := byID[miner]; !ok || !keep[rule] {
			delete(s.Hash, k)
		}
	}
	for k := range s.Suppressed {
		if !keep[k] {
			delete(s.Suppressed, k)
		}
	}
	for _, r := range p.Rules.HashrateDrop {
		drop := r.DropPct / 100
		bw := r.BaselineWindow.D()
		if bw == 0 {
			bw = time.Hour
		}
		var cands []rebootCandidate
		mining, inDrop := 0, 0
		for _, m := range miners {
			if !inList(r.Miners, m.ID) {
				continue
			}
			key := r.ID + "\x00" + m.ID
			tr := s.Hash[key]
			if m.State != pb.MinerState_MINER_STATE_MINING || m.ObservedAt.IsZero() {
				if !tr.DropSince.IsZero() {
					tr.DropSince = time.Time{}
					s.Hash[key] = tr
				}
				continue
			}
			mining++
			if m.ObservedAt.After(tr.LastAt) {
				h := m.HashrateTHs
				switch {
				case tr.RefTHs == 0 || tr.PowerTargetW != m.PowerTargetW:
					tr.RefTHs, tr.PowerTargetW, tr.DropSince = h, m.PowerTargetW, time.Time{}
				case h >= tr.RefTHs*(1-drop):
					dt := m.ObservedAt.Sub(tr.LastAt)
					alpha := 1 - math.Exp(-float64(dt)/float64(bw))
					tr.RefTHs += alpha * (h - tr.RefTHs)
					tr.DropSince = time.Time{}
				case tr.DropSince.IsZero():
					tr.DropSince = m.ObservedAt
				}
				tr.LastAt = m.ObservedAt
				s.Hash[key] = tr
			}
			if !tr.DropSince.IsZero() {
				inDrop++
				if m.ObservedAt.Sub(tr.DropSince) >= r.Window.D() {
					cands = append(cands, rebootCandidate{id: m.ID, since: tr.DropSince})
				}
			}
		}
		if r.SuppressSiteWidePct > 0 && inDrop >= 3 && float64(inDrop)*100 >= r.SuppressSiteWidePct*float64(mining) {
			s.Deferred.Suppressed += len(cands)
			if _, on := s.Suppressed[r.ID]; !on {
				s.Suppressed[r.ID] = now
				out = append(out, Action{Kind: ActNotify, RuleID: r.ID, RuleKind: kindHashrateDrop, Name: "notify",
					ID: actionID(r.ID, "site", now),
					Message: fmt.Sprintf("site-wide hashrate drop: %d of %d mining miners more than %.0f%% below their reference; "+
						"reboots suppressed (likely a pool, network or power cause)", inDrop, mining, r.DropPct)})
			}
			continue
		}
		delete(s.Suppressed, r.ID)
		if len(cands) == 0 {
			continue
		}
		inflight := len(s.Rebooting)
		for _, m := range miners {
			if _, ours := s.Rebooting[m.ID]; !ours && m.State == pb.MinerState_MINER_STATE_REBOOTING {
				inflight++
			}
		}
		slots := r.MaxConcurrent - inflight
		slices.SortFunc(cands, func(a, b rebootCandidate) int {
			if c := a.since.Compare(b.since); c != 0 {
				return c
			}
			return cmp.Compare(a.id, b.id)
		})
		for _, c := range cands {
			if last, ok := s.LastReboot[c.id]; ok && now.Sub(last) < r.MinInterval.D() {
				s.Deferred.RateLimited++
				continue
			}
			if slots <= 0 {
				s.Deferred.Cap++
				continue
			}
			slots--
			key := r.ID + "\x00" + c.id
			tr := s.Hash[key]
			tr.DropSince = time.Time{}
			s.Hash[key] = tr
			s.LastReboot[c.id] = now
			s.Rebooting[c.id] = Reboot{At: now}
			m := byID[c.id]
			out = append(out, Action{Kind: ActCommand, RuleID: r.ID, RuleKind: kindHashrateDrop, Name: "reboot",
				ID: actionID(r.ID, c.id, now), MinerIDs: []string{c.id}, Spec: &pb.CommandSpec{Action: pb.Action_ACTION_REBOOT},
				Message: fmt.Sprintf("miner %s at %.1f TH/s, more than %.0f%% below its reference %.1f TH/s for %s: reboot",
					c.id, m.HashrateTHs, r.DropPct, tr.RefTHs, m.ObservedAt.Sub(c.since).Round(time.Second))})
		}
	}
	return out
}

func splitKey(k string) (rule, miner string) {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func (s *State) unreachable(p Policy, miners []curtail.MinerSnapshot, now time.Time) []Action {
	var out []Action
	down := map[string]curtail.MinerSnapshot{}
	for _, m := range miners {
		if m.State == pb.MinerState_MINER_STATE_UNREACHABLE {
			down[m.ID] = m
		}
	}
	for k, since := range s.Notified {
		_, id := splitKey(k)
		if m, ok := down[id]; !ok || !m.StateSince.Equal(since) {
			delete(s.Notified, k)
		}
	}
	for _, r := range p.Rules.Unreachable {
		for _, m := range miners {
			if _, ok := down[m.ID]; !ok || !inList(r.Miners, m.ID) || m.StateSince.IsZero() || now.Sub(m.StateSince) < r.After.D() {
				continue
			}
			key := r.ID + "\x00" + m.ID
			if _, done := s.Notified[key]; done {
				continue
			}
			s.Notified[key] = m.StateSince
			out = append(out, Action{Kind: ActNotify, RuleID: r.ID, RuleKind: kindUnreachable, Name: "notify",
				ID: actionID(r.ID, m.ID, now), MinerIDs: []string{m.ID},
				Message: fmt.Sprintf("miner %s unreachable for %s (since %s)", m.ID, now.Sub(m.StateSince).Round(time.Second),
					m.StateSince.UTC().Format(time.RFC3339))})
		}
	}
	return out
}

// ScheduleEventID is the curtailment event id of a schedule's window: deterministic, so a restarted node
// starts the same event again rather than a second one.
func ScheduleEventID(scheduleID string, start time.Time) string {
	return "schedule:" + scheduleID + ":" + start.UTC().Format("20060102T150405Z")
}

func (s *State) schedules(p Policy, now time.Time) []Action {
	var want *ActiveSchedule
	var sched Schedule
	var loc *time.Location
	for i, sc := range p.Schedules {
		if i >= len(p.compiled) || p.compiled[i].loc == nil {
			continue
		}
		if start, end, ok := p.compiled[i].active(now); ok {
			want = &ActiveSchedule{ScheduleID: sc.ID, EventID: ScheduleEventID(sc.ID, start), Start: start, End: end}
			sched, loc = sc, p.compiled[i].loc
			break
		}
	}
	cur := s.Schedule
	switch {
	case want != nil && (cur == nil || cur.EventID != want.EventID):
		mode, _ := curtail.ParseMode(sched.Mode)
		ev := curtail.Event{ID: want.EventID, Target: sched.target(), Scope: curtail.Scope{MinerIDs: slices.Clone(sched.Miners)},
			End: want.End, Mode: mode, Source: "automation:" + sched.ID}
		msg := fmt.Sprintf("schedule %s window %s–%s (%s): curtail %s", sched.ID, want.Start.In(loc).Format("2006-01-02 15:04 MST"),
			want.End.In(loc).Format("15:04 MST"), sched.TimeZone, ev.Target)
		if cur != nil {
			msg += "; replaces " + cur.EventID
		}
		s.Schedule = want
		return []Action{{Kind: ActStartEvent, RuleID: sched.ID, RuleKind: kindSchedule, Name: "start_event", ID: want.EventID + ":start",
			Event: ev, Message: msg}}
	case want == nil && cur != nil:
		s.Schedule = nil
		return []Action{{Kind: ActStopEvent, RuleID: cur.ScheduleID, RuleKind: kindSchedule, Name: "stop_event", ID: cur.EventID + ":stop",
			EventID: cur.EventID, Message: fmt.Sprintf("schedule %s window ended: release curtailment event %s", cur.ScheduleID, cur.EventID)}}
	}
	return nil
}

// NextScheduleChange is the first schedule window start or end strictly after now, for the actor to wake
// exactly then.
func NextScheduleChange(p Policy, now time.Time) (time.Time, bool) {
	if !p.compiledOK() {
		_ = p.Compile()
	}
	var best time.Time
	for _, c := range p.compiled {
		if c.loc == nil {
			continue
		}
		if t, ok := c.next(now); ok && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best, !best.IsZero()
}
