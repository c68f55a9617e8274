package curtail

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hashfleet/hashfleet/messages/pb"
)

// simMiner is one miner of the in-memory fleet model.
type simMiner struct {
	id       string
	nominalW float64 // draw at full power
	jth      float64 // efficiency at full power
	caps     Capabilities
	tags     []string

	powerW  float64
	mode    string // "run", "sleep", "limit"
	limitW  float64
	pending *simChange

	rebootUntil  time.Time
	unreachable  bool
	lastObserved time.Time

	ignore      int  // commands accepted but not carried out (stragglers)
	fail        int  // commands answered FAILED
	unsupported bool // every curtail command answered UNSUPPORTED
	commands    []simCommand
}

type simChange struct {
	at     time.Time
	mode   string
	limitW float64
}

type simCommand struct {
	at   time.Time
	spec *pb.CommandSpec
}

// fleet is the in-memory site: sleeping drops a miner's draw to 1% of nominal after SleepDelay, a power target
// applies after LimitDelay, waking restores full draw after WakeDelay, and a rebooting miner draws nothing and
// comes back uncurtailed.
type fleet struct {
	mu         sync.Mutex
	miners     map[string]*simMiner
	SleepDelay time.Duration
	LimitDelay time.Duration
	WakeDelay  time.Duration
}

func newFleet() *fleet {
	return &fleet{miners: map[string]*simMiner{}, SleepDelay: 10 * time.Second, LimitDelay: 25 * time.Second, WakeDelay: 20 * time.Second}
}

func (f *fleet) add(m *simMiner) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m.powerW, m.mode = m.nominalW, "run"
	f.miners[m.id] = m
}

// randomFleet makes n miners: 2.8–3.6 kW, 18–38 J/TH, all able to sleep, a quarter able to take a power target.
func randomFleet(seed uint64, n int) *fleet {
	r := rand.New(rand.NewPCG(seed, 7))
	f := newFleet()
	for i := range n {
		nom := 2800 + r.Float64()*800
		m := &simMiner{id: fmt.Sprintf("m-%04d", i), nominalW: math.Round(nom), jth: 18 + r.Float64()*20, caps: Capabilities{CanSleep: true}}
		if i%4 == 0 {
			m.caps.CanSetPowerTarget, m.caps.MinPowerW, m.caps.MaxPowerW = true, math.Round(nom*0.5), math.Round(nom)
		}
		f.add(m)
	}
	return f
}

func (f *fleet) advanceLocked(now time.Time) {
	for _, m := range f.miners {
		if !m.rebootUntil.IsZero() && !now.Before(m.rebootUntil) {
			m.rebootUntil = time.Time{}
			m.mode, m.powerW, m.pending, m.limitW = "run", m.nominalW, nil, 0
		}
		if p := m.pending; p != nil && !now.Before(p.at) {
			m.mode, m.limitW, m.pending = p.mode, p.limitW, nil
			switch p.mode {
			case "sleep":
				m.powerW = m.nominalW * 0.01
			case "limit":
				m.powerW = math.Min(p.limitW, m.nominalW)
			default:
				m.powerW = m.nominalW
			}
		}
	}
}

func (m *simMiner) state() pb.MinerState {
	switch {
	case !m.rebootUntil.IsZero():
		return pb.MinerState_MINER_STATE_REBOOTING
	case m.unreachable:
		return pb.MinerState_MINER_STATE_UNREACHABLE
	case m.mode == "sleep":
		return pb.MinerState_MINER_STATE_CURTAILED
	}
	return pb.MinerState_MINER_STATE_MINING
}

// snapshots is what the node would see now (every reachable miner freshly polled).
func (f *fleet) snapshots(now time.Time) []MinerSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanceLocked(now)
	out := make([]MinerSnapshot, 0, len(f.miners))
	for _, m := range f.miners {
		st := m.state()
		s := MinerSnapshot{ID: m.id, State: st, Caps: m.caps, Tags: m.tags, PowerW: m.powerW}
		if st == pb.MinerState_MINER_STATE_REBOOTING || st == pb.MinerState_MINER_STATE_UNREACHABLE {
			s.ObservedAt = m.lastObserved
			s.PowerW = 0
		} else {
			m.lastObserved = now
			s.ObservedAt = now
			if m.mode != "sleep" {
				s.HashrateTHs = m.powerW / m.jth
				s.EfficiencyJTH = m.jth
			}
			if m.mode == "limit" {
				s.PowerTargetW = m.limitW
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b MinerSnapshot) int { return cmpString(a.ID, b.ID) })
	return out
}

// apply carries out a command and returns each miner's result.
func (f *fleet) apply(now time.Time, c Command) []Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Result
	for _, id := range c.MinerIDs {
		r := Result{CommandID: c.CommandID, MinerID: id, Code: pb.ResultCode_RESULT_CODE_SUCCEEDED}
		m, ok := f.miners[id]
		switch {
		case !ok:
			r.Code = pb.ResultCode_RESULT_CODE_UNKNOWN_MINER
		case m.state() == pb.MinerState_MINER_STATE_REBOOTING || m.unreachable:
			r.Code, r.Message = pb.ResultCode_RESULT_CODE_FAILED, "unreachable"
		case m.unsupported && c.Spec.GetAction() == pb.Action_ACTION_CURTAIL:
			r.Code, r.Message = pb.ResultCode_RESULT_CODE_UNSUPPORTED, "no curtail on this firmware"
		case m.fail > 0:
			m.fail--
			r.Code, r.Message = pb.ResultCode_RESULT_CODE_FAILED, "connection reset"
		case m.ignore > 0:
			m.ignore--
			m.commands = append(m.commands, simCommand{at: now, spec: c.Spec})
		default:
			m.commands = append(m.commands, simCommand{at: now, spec: c.Spec})
			switch {
			case c.Spec.GetAction() == pb.Action_ACTION_CURTAIL && c.Spec.GetPowerTargetW() > 0:
				m.pending = &simChange{at: now.Add(f.LimitDelay), mode: "limit", limitW: c.Spec.GetPowerTargetW()}
			case c.Spec.GetAction() == pb.Action_ACTION_CURTAIL:
				m.pending = &simChange{at: now.Add(f.SleepDelay), mode: "sleep"}
			case c.Spec.GetAction() == pb.Action_ACTION_UNCURTAIL:
				m.pending = &simChange{at: now.Add(f.WakeDelay), mode: "run"}
			}
		}
		out = append(out, r)
	}
	return out
}

func (f *fleet) reboot(id string, now time.Time, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.miners[id]
	m.rebootUntil = now.Add(d)
	m.powerW, m.pending = 0, nil
}

func (f *fleet) miner(id string) *simMiner {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.miners[id]
}

func (f *fleet) totalW(now time.Time) float64 {
	w := 0.0
	for _, s := range f.snapshots(now) {
		w += s.PowerW
	}
	return w
}

func (f *fleet) curtailCommands(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.miners[id].commands {
		if c.spec.GetAction() == pb.Action_ACTION_CURTAIL {
			n++
		}
	}
	return n
}

// tb is what the harness needs of *testing.T and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
}

// step is one Reconcile call that commanded something.
type step struct {
	at      time.Time
	actions []Action
}

// loop drives the pure core against a fleet, one Reconcile per tick, as the CurtailActor does.
type loop struct {
	t       tb
	f       *fleet
	st      State
	now     time.Time
	tick    time.Duration
	pending []Result
	steps   []step
	// onTick, when set, runs before each Reconcile (fault injection).
	onTick func(now time.Time)
}

func newLoop(t tb, f *fleet, cfg Config, start time.Time) *loop {
	return &loop{t: t, f: f, st: NewState(cfg), now: start, tick: cfg.TickInterval}
}

func (l *loop) begin(ev Event) {
	l.t.Helper()
	st, err := Begin(l.st, ev, l.now)
	if err != nil {
		l.t.Fatalf("Begin: %v", err)
	}
	l.st = st
	l.reconcile()
}

func (l *loop) end(id string) {
	l.t.Helper()
	st, err := End(l.st, id, "test", l.now)
	if err != nil {
		l.t.Fatalf("End: %v", err)
	}
	l.st = st
	l.reconcile()
}

func (l *loop) reconcile() {
	if l.onTick != nil {
		l.onTick(l.now)
	}
	obs := Observations{Miners: l.f.snapshots(l.now), Results: l.pending}
	l.pending = nil
	actions, st := Reconcile(l.st, obs, l.now)
	l.st = st
	if len(actions) > 0 {
		l.steps = append(l.steps, step{at: l.now, actions: actions})
	}
	for _, c := range Commands("curtail:"+st.Event.ID, actions) {
		l.pending = append(l.pending, l.f.apply(l.now, c)...)
	}
}

// run ticks until d has passed or until stop holds.
func (l *loop) run(d time.Duration, stop func() bool) {
	end := l.now.Add(d)
	for l.now.Before(end) {
		l.now = l.now.Add(l.tick)
		l.reconcile()
		if stop != nil && stop() {
			return
		}
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.StepKW = 200
	cfg.StepInterval = 30 * time.Second
	cfg.SettleTime = 40 * time.Second
	cfg.RetryBackoff = 20 * time.Second
	cfg.MaxRetryBackoff = 2 * time.Minute
	cfg.TickInterval = 5 * time.Second
	return cfg
}

var t0 = time.Date(2026, 7, 14, 16, 0, 0, 0, time.UTC)
