package curtail

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// ActionKind is what is done to one miner.
type ActionKind int

const (
	// ActSleep: ACTION_CURTAIL without a power target.
	ActSleep ActionKind = iota + 1
	// ActLimit: ACTION_CURTAIL with a power target.
	ActLimit
	// ActRelease: ACTION_UNCURTAIL (with the miner's previous power target, when it had one).
	ActRelease
)

func (k ActionKind) String() string {
	switch k {
	case ActSleep:
		return "sleep"
	case ActLimit:
		return "limit"
	case ActRelease:
		return "release"
	}
	return "unknown"
}

// Assignment is the planner's decision for one miner.
type Assignment struct {
	MinerID string
	Kind    ActionKind // ActSleep or ActLimit
	// LimitW is the power target (ActLimit).
	LimitW float64
	// FromW is the miner's draw when planned; ExpectedW its expected draw once curtailed.
	FromW, ExpectedW float64
}

// SavingW is the reduction the assignment is expected to bring.
func (a Assignment) SavingW() float64 { return a.FromW - a.ExpectedW }

// Step is one ramp step: the miners commanded together, and when.
type Step struct {
	At       time.Time
	MinerIDs []string
	// DeltaW is the change in draw the step commands (negative: down).
	DeltaW float64
}

// RampPlan is what curtailing an event from scratch would do.
type RampPlan struct {
	EventID string
	// Full: every miner in scope is to be curtailed; TargetW is then 0.
	Full    bool
	TargetW float64
	// BaselineW is the scope's draw now; ProjectedW its expected draw once every assignment took effect.
	BaselineW, ProjectedW float64
	// UnmetW is what the target still lacks once every miner that can be curtailed is (0 when met).
	UnmetW float64
	// Assignments in the order they are commanded (the event's order: least efficient first by default).
	Assignments []Assignment
	// Steps group the assignments into ramp steps, StepInterval apart.
	Steps []Step
}

// RampTime is the time from the first ramp step to the last.
func (p RampPlan) RampTime() time.Duration {
	if len(p.Steps) == 0 {
		return 0
	}
	return p.Steps[len(p.Steps)-1].At.Sub(p.Steps[0].At)
}

// Plan decides, from scratch, which miners an event curtails and how, and the ramp that gets there: miners in
// the event's order (least efficient first unless configured otherwise), each put to sleep or power-limited
// according to the event's mode and the miner's capabilities, until the scope's projected draw meets the
// target; then grouped into steps of at most cfg.StepKW / cfg.StepMiners, cfg.StepInterval apart, starting at
// the later of now and the event's start. It is pure. Reconcile makes the same decisions incrementally.
func Plan(cfg Config, ev Event, miners []MinerSnapshot, now time.Time) RampPlan {
	scope := ev.Scope.set()
	in := make([]MinerSnapshot, 0, len(miners))
	baseline := 0.0
	for _, m := range miners {
		if inScope(scope, m.ID) {
			in = append(in, m)
			baseline += m.countedW()
		}
	}
	targetW, full := resolveTarget(ev.Target, baseline)
	p := RampPlan{EventID: ev.ID, Full: full, TargetW: targetW, BaselineW: baseline}
	cands := candidates(cfg, ev, in, nil)
	p.Assignments, p.ProjectedW = choose(cfg, ev.Mode, full, cands, baseline, targetW)
	if !full && p.ProjectedW > targetW {
		p.UnmetW = p.ProjectedW - targetW
	}
	at := now
	if ev.Start.After(at) {
		at = ev.Start
	}
	deltas := make([]float64, len(p.Assignments))
	for i, a := range p.Assignments {
		deltas[i] = a.SavingW()
	}
	for i := 0; i < len(deltas); {
		n := stepSize(cfg, deltas[i:])
		s := Step{At: at}
		for _, a := range p.Assignments[i : i+n] {
			s.MinerIDs = append(s.MinerIDs, a.MinerID)
			s.DeltaW -= a.SavingW()
		}
		p.Steps = append(p.Steps, s)
		at = at.Add(cfg.StepInterval)
		i += n
	}
	return p
}

func inScope(scope map[string]struct{}, id string) bool {
	if scope == nil {
		return true
	}
	_, ok := scope[id]
	return ok
}

// resolveTarget turns a target into a ceiling in watts given the scope's uncurtailed draw.
func resolveTarget(t Target, baselineW float64) (targetW float64, full bool) {
	switch t.Kind {
	case TargetFull:
		return 0, true
	case TargetShed:
		return math.Max(0, baselineW-t.KW*1000), false
	default:
		return t.KW * 1000, false
	}
}

// selectable reports whether m may be chosen now: answering, hashing or idle (not stopped or curtailed by
// someone else), with a reading, drawing power, and able to do what the mode asks.
func selectable(m MinerSnapshot, mode Mode) bool {
	switch m.State {
	case pb.MinerState_MINER_STATE_MINING, pb.MinerState_MINER_STATE_ONLINE:
	default:
		return false
	}
	if m.ObservedAt.IsZero() || !(m.PowerW > 0) {
		return false
	}
	switch mode {
	case ModeSleep:
		return m.Caps.CanSleep
	case ModePowerLimit:
		return m.Caps.canLimit(m.PowerW)
	}
	return m.Caps.CanSleep || m.Caps.canLimit(m.PowerW)
}

// candidates returns the selectable miners of in that are not excluded, in the event's order.
func candidates(cfg Config, ev Event, in []MinerSnapshot, excluded func(id string) bool) []MinerSnapshot {
	out := make([]MinerSnapshot, 0, len(in))
	for _, m := range in {
		if selectable(m, ev.Mode) && (excluded == nil || !excluded(m.ID)) {
			out = append(out, m)
		}
	}
	order := ev.Order
	if order == OrderDefault {
		order = cfg.Order
	}
	rank(order, cfg.PriorityTags, out)
	return out
}

// rank sorts miners into curtailment order.
func rank(order Order, priority []string, ms []MinerSnapshot) {
	group := func(m MinerSnapshot) int {
		best := len(priority)
		for _, t := range m.Tags {
			if i := slices.Index(priority, t); i >= 0 && i < best {
				best = i
			}
		}
		return best
	}
	byEfficiency := func(a, b MinerSnapshot) int {
		// Higher J/TH first; +Inf (drawing without hashing) compares greatest.
		if c := cmp.Compare(b.jth(), a.jth()); c != 0 {
			return c
		}
		if c := cmp.Compare(b.PowerW, a.PowerW); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	}
	switch order {
	case OrderHighestPower:
		slices.SortStableFunc(ms, func(a, b MinerSnapshot) int {
			if c := cmp.Compare(b.PowerW, a.PowerW); c != 0 {
				return c
			}
			return byEfficiency(a, b)
		})
	case OrderPriority:
		slices.SortStableFunc(ms, func(a, b MinerSnapshot) int {
			if c := cmp.Compare(group(a), group(b)); c != 0 {
				return c
			}
			return byEfficiency(a, b)
		})
	default:
		slices.SortStableFunc(ms, byEfficiency)
	}
}

// choose assigns miners from cands (in order) until projectedW is at most targetW (every capable miner when
// full), returning the assignments and the new projection.
func choose(cfg Config, mode Mode, full bool, cands []MinerSnapshot, projectedW, targetW float64) ([]Assignment, float64) {
	var out []Assignment
	for _, m := range cands {
		if !full && projectedW <= targetW {
			break
		}
		need := math.Inf(1)
		if !full {
			need = projectedW - targetW
		}
		a, ok := assign(cfg, mode, m, need)
		if !ok {
			continue
		}
		projectedW -= a.SavingW()
		out = append(out, a)
	}
	return out, projectedW
}

// assign decides how to curtail m when the scope needs needW less (+Inf: as much as possible).
func assign(cfg Config, mode Mode, m MinerSnapshot, needW float64) (Assignment, bool) {
	from := m.PowerW
	sleepW := from * cfg.SleepDrawFraction
	canSleep := m.Caps.CanSleep && mode != ModePowerLimit
	canLimit := m.Caps.canLimit(from) && mode != ModeSleep
	sleep := Assignment{MinerID: m.ID, Kind: ActSleep, FromW: from, ExpectedW: sleepW}
	limit := func(w float64) Assignment {
		w = math.Max(m.Caps.MinPowerW, math.Floor(w))
		return Assignment{MinerID: m.ID, Kind: ActLimit, LimitW: w, FromW: from, ExpectedW: w}
	}
	switch {
	case mode == ModeAuto && canLimit && needW < from-sleepW && from-needW >= m.Caps.MinPowerW:
		// The last miner: a power target meets the target more closely than sleep would.
		return limit(from - needW), true
	case canSleep:
		return sleep, true
	case canLimit:
		return limit(from - needW), true
	}
	return Assignment{}, false
}

// stepSize is how many of the leading changes (absolute watts, in order) one ramp step takes: as many as fit
// in cfg.StepKW and cfg.StepMiners, and at least one.
func stepSize(cfg Config, deltas []float64) int {
	sum, n := 0.0, 0
	for _, d := range deltas {
		d = math.Abs(d)
		if n > 0 && ((cfg.StepKW > 0 && sum+d > cfg.StepKW*1000) || (cfg.StepMiners > 0 && n+1 > cfg.StepMiners)) {
			break
		}
		sum += d
		n++
	}
	return n
}
